/*! grconnect connect popup, v1. No dependencies.
 *
 * Load it from your grconnect server:
 *   <script src="https://connect.example.com/static/connect/v1.js" defer></script>
 * then either mark a link to a connect session's url:
 *   <a href="https://connect.example.com/connect/…" data-grconnect>Connect GetResponse</a>
 * and listen for the outcome on it:
 *   link.addEventListener("grconnect:result", function (ev) { ev.detail.status … });
 * or call it yourself:
 *   GRConnect.open(url).then(function (result) { … });
 *
 * The result is {status: "connected" | "reconnected" | "transferred", connection_id},
 * {status: "error", error} when the customer closed the window after a failure
 * (access_denied, link_used, account_taken, …), or {status: "closed"} when they
 * closed it before finishing. options.onMessage sees every report, failures the
 * customer may still retry included. When the browser blocks the popup, the page
 * goes to the connect url instead (and the link's return_url brings the customer
 * back). The popup reports only to pages on the app's return origins.
 */
(function (window, document) {
  "use strict";
  if (window.GRConnect) return;

  function withPopup(url) {
    var sep = url.indexOf("?") >= 0 ? "&" : "?";
    return url + sep + "popup=" + encodeURIComponent(window.location.origin);
  }

  function originOf(url) {
    var a = document.createElement("a");
    a.href = url;
    return a.protocol + "//" + a.host;
  }

  function open(url, options) {
    options = options || {};
    var width = options.width || 520, height = options.height || 720;
    var left = Math.max(0, (window.screenX || 0) + ((window.outerWidth || width) - width) / 2);
    var top = Math.max(0, (window.screenY || 0) + ((window.outerHeight || height) - height) / 2);
    var features = "popup=yes,width=" + width + ",height=" + height + ",left=" + Math.round(left) + ",top=" + Math.round(top);
    var popup = window.open(withPopup(url), "grconnect", features);
    if (!popup) {
      // Blocked: the whole page goes through the flow instead.
      window.location.assign(url);
      return new Promise(function () {});
    }
    if (popup.focus) popup.focus();
    var expected = originOf(url);
    return new Promise(function (resolve) {
      var last = null, done = false, timer;
      function finish(result) {
        if (done) return;
        done = true;
        window.removeEventListener("message", onMessage);
        clearInterval(timer);
        resolve(result);
      }
      function onMessage(ev) {
        if (ev.origin !== expected || ev.source !== popup) return;
        var data = ev.data;
        if (!data || data.source !== "grconnect" || typeof data.status !== "string") return;
        var result = { status: data.status };
        if (data.connection_id) result.connection_id = data.connection_id;
        if (data.error) result.error = data.error;
        last = result;
        if (typeof options.onMessage === "function") options.onMessage(result);
        if (result.status !== "error") finish(result);
      }
      window.addEventListener("message", onMessage);
      timer = setInterval(function () {
        if (popup.closed) finish(last || { status: "closed" });
      }, 400);
    });
  }

  document.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest("a[data-grconnect]") : null;
    if (!el || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    ev.preventDefault();
    open(el.href).then(function (result) {
      el.dispatchEvent(new CustomEvent("grconnect:result", { bubbles: true, detail: result }));
    });
  });

  window.GRConnect = { open: open, version: 1 };
})(window, document);
