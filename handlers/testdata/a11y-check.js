// Evaluated by the browser tests (a11yCheckJS): returns one line per
// accessibility problem on the page.
(() => {
  const out = [];
  const text = s => (s || "").replace(/\s+/g, " ").trim();
  const desc = el => el.outerHTML.replace(/\s+/g, " ").slice(0, 200);
  const labelledBy = el => {
    const ids = text(el.getAttribute("aria-labelledby")).split(" ").filter(Boolean);
    return ids.length > 0 && ids.every(id => { const r = document.getElementById(id); return r && text(r.textContent) !== ""; });
  };
  const named = el => text(el.getAttribute("aria-label")) !== "" || labelledBy(el);

  if (text(document.documentElement.getAttribute("lang")) === "") out.push("<html> has no lang");
  if (text(document.title) === "") out.push("the page has no <title>");

  const labels = Array.from(document.querySelectorAll("label[for]"));
  document.querySelectorAll("input, select, textarea").forEach(el => {
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (type === "hidden") return;
    if (["submit", "button", "reset"].includes(type)) {
      if (text(el.value) === "" && !named(el)) out.push("button input without a value: " + desc(el));
      return;
    }
    const forLabel = el.id !== "" && labels.some(l => l.htmlFor === el.id && text(l.textContent) !== "");
    if (!forLabel && !named(el)) out.push("form control without a label: " + desc(el));
  });

  document.querySelectorAll("img").forEach(el => {
    if (!el.hasAttribute("alt")) out.push("img without alt: " + desc(el));
  });
  document.querySelectorAll("svg").forEach(el => {
    if (el.parentElement && el.parentElement.closest("svg")) return;
    if (el.getAttribute("aria-hidden") === "true") return;
    const title = el.querySelector(":scope > title");
    if (el.getAttribute("role") === "img" && ((title && text(title.textContent) !== "") || named(el))) return;
    out.push("svg neither aria-hidden=\"true\" nor role=\"img\" with a title or label: " + desc(el));
  });

  const hs = Array.from(document.querySelectorAll("h1, h2, h3, h4, h5, h6"));
  const h1s = hs.filter(h => h.tagName === "H1");
  if (h1s.length !== 1) out.push("want exactly one h1, found " + h1s.length + ": " + h1s.map(h => JSON.stringify(text(h.textContent))).join(", "));
  let prev = 0;
  hs.forEach(h => {
    const level = Number(h.tagName[1]);
    if (prev === 0 && level !== 1) out.push("the first heading is not an h1: " + desc(h));
    else if (prev > 0 && level > prev + 1) out.push("heading skips from h" + prev + " to h" + level + ": " + desc(h));
    prev = level;
  });

  const mains = document.querySelectorAll("main, [role=main]");
  if (mains.length !== 1) out.push("want exactly one <main> landmark, found " + mains.length);

  const ids = {};
  document.querySelectorAll("[id]").forEach(el => { ids[el.id] = (ids[el.id] || 0) + 1; });
  Object.keys(ids).filter(id => ids[id] > 1).forEach(id => out.push("id " + JSON.stringify(id) + " is used " + ids[id] + " times"));

  document.querySelectorAll("a[href], button").forEach(el => {
    const alts = Array.from(el.querySelectorAll("img[alt]")).map(i => i.alt).join("");
    if (text(el.textContent) === "" && text(alts) === "" && !named(el) && text(el.getAttribute("title")) === "") {
      out.push("link or button without a name: " + desc(el));
    }
  });
  // Text contrast (WCAG AA): 4.5:1, or 3:1 for large text, against the
  // backgrounds behind it. Inactive controls are exempt, as WCAG allows.
  const rgba = c => {
    const m = /^rgba?\(([^)]+)\)$/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, below) => ({
    r: top.r * top.a + below.r * (1 - top.a), g: top.g * top.a + below.g * (1 - top.a),
    b: top.b * top.a + below.b * (1 - top.a), a: 1,
  });
  const lum = c => {
    const ch = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const contrast = el => {
    const fg = rgba(getComputedStyle(el).color);
    if (!fg) return null;
    let opacity = 1;
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.backgroundImage !== "none") return null;
      if (layers.length === 0) opacity *= Number(s.opacity);
      const bg = rgba(s.backgroundColor);
      if (bg && bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
    }
    let bg = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    const text = over({r: fg.r, g: fg.g, b: fg.b, a: fg.a * opacity}, bg);
    const [hi, lo] = [lum(text), lum(bg)].sort((x, y) => y - x);
    return {ratio: (hi + 0.05) / (lo + 0.05), fg: getComputedStyle(el).color, bg: "rgb(" + [bg.r, bg.g, bg.b].map(Math.round).join(", ") + ")"};
  };
  document.querySelectorAll("body *").forEach(el => {
    if (["SCRIPT", "STYLE", "svg", "TITLE"].includes(el.tagName) || el.closest("svg")) return;
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && text(n.textContent) !== "");
    const control = el.matches("input:not([type=hidden]), select, textarea") && text(el.value) !== "";
    if (!own && !control) return;
    if (el.getClientRects().length === 0 || getComputedStyle(el).visibility === "hidden") return;
    if (el.closest("[aria-disabled=true], :disabled")) return;
    const c = contrast(el);
    if (!c) return;
    const cs = getComputedStyle(el);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    if (c.ratio < need) out.push("contrast " + c.ratio.toFixed(2) + ":1 (needs " + need + ":1), " + c.fg + " on " + c.bg + ": " + desc(el));
  });
  return out;
})()
