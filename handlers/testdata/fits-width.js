// Evaluated by the browser tests (fitsWidthJS): returns one line per way the page
// does not fit the viewport's width:
//   - the document is wider than the viewport (it scrolls sideways);
//   - a box (other than a <pre> or <textarea>, which may scroll in their own box)
//     scrolls sideways: part of its content is hidden to the right;
//   - visible text, or a control, sits past the viewport's right edge, or past the
//     right edge of a box that clips or scrolls it (text hidden on purpose, such as
//     the screen-reader-only kind, does not count).
(() => {
  const out = [];
  // The layout viewport: a phone zooms out to show a page wider than itself,
  // which makes innerWidth grow with the page.
  const vw = document.documentElement.clientWidth;
  const desc = el => el.outerHTML.replace(/\s+/g, " ").slice(0, 160);
  const sw = document.documentElement.scrollWidth;
  if (sw > vw) out.push("the document is " + sw + " px wide in a " + vw + " px viewport");

  const scrolls = s => s.overflowX === "auto" || s.overflowX === "scroll";
  // Code blocks and text areas scroll in their own box; what is not rendered (in a
  // closed <details>, display: none, visibility: hidden) cannot stick out.
  const exempt = el => el.closest("pre, textarea, svg, script, style, template, select") !== null || !el.checkVisibility({visibilityProperty: true});
  document.querySelectorAll("body *").forEach(el => {
    if (exempt(el)) return;
    const s = getComputedStyle(el);
    if (scrolls(s) && el.scrollWidth > el.clientWidth + 1) {
      out.push("scrolls sideways (" + el.scrollWidth + " px of content in " + el.clientWidth + " px): " + desc(el));
    }
  });

  // Where rect stands, judged by the boxes around el: null when it is hidden on
  // purpose (screen-reader-only text: clipped, or in a box of a pixel); {stuck} when
  // a box that clips or scrolls cuts it off on the right (what the reader cannot
  // see); else the rect.
  const visible = (rect, el) => {
    for (let a = el; a && a !== document.documentElement; a = a.parentElement) {
      const s = getComputedStyle(a);
      const b = a.getBoundingClientRect();
      const clips = s.overflowX !== "visible";
      if ((s.clip && s.clip !== "auto") || s.clipPath !== "none" || (clips && (b.width <= 1 || b.height <= 1))) return null;
      if (clips && rect.right > b.right + 1) return {stuck: desc(a)};
    }
    return rect;
  };

  const report = (what, el, rect) => {
    const v = visible(rect, el);
    if (!v) return false;
    if (v.stuck) {
      out.push(what + " is cut off on the right by " + v.stuck + ": " + desc(el));
      return true;
    }
    if (v.right > vw + 0.5) {
      out.push(what + " ends at " + Math.round(v.right) + " px, past the " + vw + " px viewport: " + desc(el));
      return true;
    }
    return false;
  };

  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || n.textContent.trim() === "" || exempt(el)) continue;
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) {
      if (r.width < 1 || r.height < 1) continue;
      if (report("text " + JSON.stringify(n.textContent.trim().slice(0, 40)), el, r)) break;
    }
  }
  document.querySelectorAll("input:not([type=hidden]), select, textarea, button, img, svg").forEach(el => {
    if ((el.parentElement && el.parentElement.closest("svg")) || !el.checkVisibility({visibilityProperty: true})) return;
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return;
    report("<" + el.tagName.toLowerCase() + ">", el, r);
  });
  return out;
})()
