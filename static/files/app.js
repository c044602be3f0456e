// grconnect's small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="input-id">.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var input = document.getElementById(btn.getAttribute("data-copy"));
    if (!input) return;
    // A link that copies opens its page only without this script.
    if (btn.tagName === "A") ev.preventDefault();
    var text = input.value !== undefined ? input.value : input.textContent;
    var done = function () {
      var old = btn.textContent;
      btn.textContent = "Copied";
      btn.setAttribute("aria-live", "polite");
      setTimeout(function () { btn.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { input.select(); });
    } else {
      input.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for manual copy */ }
    }
  });

  // Forms, or the button that submits one, with data-confirm ask before submitting
  // (the server asks too, on its own page).
  document.addEventListener("submit", function (ev) {
    var by = ev.submitter && ev.submitter.hasAttribute("data-confirm") ? ev.submitter : ev.target;
    var msg = by.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  // Relative times: <time datetime="…" data-relative> keeps "in 42 min" current.
  function rel(date) {
    var s = Math.round((date.getTime() - Date.now()) / 1000);
    var past = s < 0, a = Math.abs(s), mins = Math.round(a / 60), hours = Math.round(a / 3600), out;
    if (a < 60) out = a + " s";
    else if (mins < 60) out = mins + " min";
    else if (hours < 48) out = hours + " h";
    else out = Math.round(a / 86400) + " d";
    return past ? out + " ago" : "in " + out;
  }
  function tick() {
    document.querySelectorAll("time[data-relative]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        var text = rel(d);
        if (t.getAttribute("data-relative") === "expiry" && / ago$/.test(text)) text = "expired " + text;
        t.textContent = text;
      }
    });
  }
  setInterval(tick, 30000);

  // App form: the MAX-only fields ([data-max-only]) show for a MAX edition only.
  function showMaxOnly(edition) {
    var max = edition === "max_us" || edition === "max_pl";
    document.querySelectorAll("[data-max-only]").forEach(function (el) { el.hidden = !max; });
  }

  // A form's error summary takes the focus (autofocus does too, where supported);
  // each of its links moves the focus to its field.
  var summary = document.querySelector("[data-error-summary]");
  if (summary && document.activeElement !== summary) summary.focus();
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest("[data-error-summary] a[href^='#']");
    if (!a) return;
    var field = document.getElementById(a.getAttribute("href").slice(1));
    if (!field) return;
    ev.preventDefault();
    field.scrollIntoView({block: "center"});
    field.focus();
  });

  // App form: switching edition pre-fills the URLs that still hold another edition's default.
  document.addEventListener("change", function (ev) {
    if (ev.target.id !== "edition") return;
    showMaxOnly(ev.target.value);
    var box = document.querySelector("[data-edition-defaults]");
    if (!box) return;
    var defaults = JSON.parse(box.getAttribute("data-edition-defaults"));
    var known = [];
    Object.keys(defaults).forEach(function (k) { known.push(defaults[k][0], defaults[k][1]); });
    var pick = defaults[ev.target.value];
    if (!pick) return;
    [["auth_url", 0], ["api_url", 1]].forEach(function (f) {
      var input = document.getElementById(f[0]);
      if (input && (input.value === "" || known.indexOf(input.value) >= 0)) input.value = pick[f[1]];
    });
  });

  // Time zone: an operator with none stored gets the browser's, reported once; the
  // account page offers to pick the browser's zone in its list.
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* no Intl */ }
  var body = document.body;
  if (zone && body.hasAttribute("data-tz-detect") && window.fetch) {
    fetch("/account/time-zone", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": body.getAttribute("data-csrf")},
      body: "auto=1&time_zone=" + encodeURIComponent(zone)
    }).then(function () { body.removeAttribute("data-tz-detect"); }, function () { /* try on the next page */ });
  }
  var useBrowser = document.querySelector("[data-tz-use-browser]");
  var select = document.getElementById("time_zone");
  if (useBrowser && select && zone) {
    useBrowser.textContent = "Use my browser's zone (" + zone + ")";
    useBrowser.hidden = false;
    useBrowser.addEventListener("click", function () {
      if (!Array.prototype.some.call(select.options, function (o) { return o.value === zone; })) {
        select.add(new Option(zone, zone), 0);
      }
      select.value = zone;
      select.focus();
    });
  }
})();
