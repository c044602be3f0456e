// grconnect's connect popup, the popup's side: the success and failure pages
// report the outcome to the page that opened the popup (window.opener), with
// postMessage to that page's origin only (one of the app's return origins, as
// the server checked). Served from grconnect's own origin: no inline script.
(function () {
  "use strict";
  var el = document.getElementById("grconnect-result");
  if (!el) return;
  var origin = el.getAttribute("data-origin");
  var msg = { source: "grconnect", status: el.getAttribute("data-status") };
  var id = el.getAttribute("data-connection-id");
  var err = el.getAttribute("data-error");
  if (id) msg.connection_id = id;
  if (err) msg.error = err;
  var opener = window.opener;
  if (origin && opener && !opener.closed) {
    try { opener.postMessage(msg, origin); } catch (e) { /* the opener navigated away */ }
  }
  document.addEventListener("click", function (ev) {
    if (ev.target.closest("[data-close-window]")) window.close();
  });
  if (msg.status !== "error" && opener) {
    // Connected: nothing left to read here; the opener's page takes over.
    setTimeout(function () { window.close(); }, 1200);
  }
})();
