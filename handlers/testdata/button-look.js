// Evaluated by the snippet browser test (buttonLookJS): the computed look of the
// page's first link.
(() => {
  const s = getComputedStyle(document.querySelector("a"));
  return {bg: s.backgroundColor, pad: s.paddingLeft, deco: s.textDecorationLine, display: s.display};
})()
