// Refresh the job container page every 2 s from its JSON state, without a
// page reload. Values are written with textContent, so agent output stays text.
(function () {
  "use strict";
  var root = document.getElementById("container");
  if (!root) { return; }
  var url = root.getAttribute("data-state-url");
  var kinds = ["succeeded", "failed", "running", "waiting"];

  // The same 5 % steps as pages.width_class, because the
  // Content-Security-Policy allows no inline style attributes.
  function widthClass(part, whole) {
    var ratio = whole ? part / whole : 0;
    if (!(ratio > 0)) { return "w-0"; }
    var step = Math.max(1, Math.min(20, Math.floor(ratio * 20 + 0.5)));
    return "w-" + step * 5;
  }

  function showSummary(container) {
    var counts = {
      succeeded: container.succeeded,
      failed: container.failed + container.not_sent,
      running: container.running,
      waiting: container.waiting
    };
    kinds.forEach(function (kind) {
      var count = document.getElementById("count-" + kind);
      if (count) { count.textContent = String(counts[kind]); }
      var bar = root.querySelector(".progress ." + kind);
      if (bar) { bar.className = kind + " " + widthClass(counts[kind], container.jobs); }
    });
  }

  function showJob(job) {
    var row = document.getElementById("job-" + job.id);
    if (!row) { return; }
    row.querySelectorAll("[data-field]").forEach(function (cell) {
      var value = job[cell.getAttribute("data-field")];
      cell.textContent = value === null || value === undefined ? "" : String(value);
    });
    var state = row.querySelector("[data-field=state_name]");
    state.className = "state state-" + job.state_name;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        showSummary(data.container);
        data.jobs.forEach(showJob);
      })
      .catch(function () { /* try again at the next tick */ })
      .then(function () { window.setTimeout(poll, 2000); });
  }

  window.setTimeout(poll, 2000);
})();
