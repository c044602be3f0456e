// Describes document.activeElement and whether it shows a focus ring (an outline
// or the stylesheet's box-shadow). Evaluated by the browser tests (focusJS).
(() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {desc: "body", visible: false};
  const cs = getComputedStyle(el);
  const outline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0;
  const shadow = cs.boxShadow !== "none" && cs.boxShadow !== "";
  let desc = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
  if (el.getAttribute("data-testid")) desc += "[data-testid=" + el.getAttribute("data-testid") + "]";
  desc += " " + JSON.stringify((el.textContent || el.value || "").trim().slice(0, 40));
  return {desc: desc, visible: outline || shadow};
})()
