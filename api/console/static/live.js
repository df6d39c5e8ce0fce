// Live progress bars of the Tolk console. Each bar with a data-stream-token follows its
// group's Server-Sent Events stream with that token (a read token for that one group,
// minted by the server for this page; the page never holds an API key). A browser keeps
// only a few connections to one server open, so at most MAX_STREAMS bars are followed at
// once; the others start as those finish.
"use strict";
(function () {
  var MAX_STREAMS = 4;
  var EVENTS = ["snapshot", "job.completed", "job.failed", "job.cancelled", "job.review_requested",
                "group.completed"];
  var waiting = Array.prototype.slice.call(document.querySelectorAll(".bar[data-stream-token]"));
  var open = 0;

  function field(bar, name) { return bar.querySelector('[data-field="' + name + '"]'); }

  function show(bar, snap) {
    var done = snap.completedJobs + snap.failedJobs + snap.cancelledJobs;
    var progress = bar.querySelector("progress");
    progress.max = snap.totalJobs;
    progress.value = done;
    field(bar, "done").textContent = done;
    field(bar, "total").textContent = snap.totalJobs;
    field(bar, "failed").textContent = snap.failedJobs;
    field(bar, "cancelled").textContent = snap.cancelledJobs;
    field(bar, "awaiting").textContent = snap.awaitingReviewJobs || 0;
    if (snap.status) { setStatus(field(bar, "status"), snap.status); }
    Object.keys(snap.jobs || {}).forEach(function (jobId) {
      var cell = document.querySelector('[data-job-status="' + jobId + '"]');
      if (cell) { setStatus(cell, snap.jobs[jobId].status); }
    });
  }

  function setStatus(element, status) {
    element.textContent = status;
    element.className = "status status-" + status;
  }

  function follow(bar) {
    open += 1;
    var url = "/jobs/localization/groups/" + encodeURIComponent(bar.dataset.group) +
      "/events?token=" + encodeURIComponent(bar.dataset.streamToken);
    var source = new EventSource(url);
    var finished = false;
    function end() {
      if (finished) { return; }
      finished = true;
      source.close();
      open -= 1;
      next();
    }
    EVENTS.forEach(function (type) {
      source.addEventListener(type, function (event) {
        var message = JSON.parse(event.data);
        show(bar, message.snapshot);
        if (type === "group.completed") {
          setStatus(field(bar, "status"), message.status);
          bar.dataset.finished = "true";
          end();
        }
      });
    });
    // A refused or ended stream (the token expired, the group finished): stop following;
    // a reload of the page shows the latest state.
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) { end(); }
    });
  }

  function next() {
    while (open < MAX_STREAMS && waiting.length) { follow(waiting.shift()); }
  }

  next();
})();
