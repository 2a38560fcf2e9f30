// Optional enhancement: stop each clip at its event's end time.
// The page works without it (the #t=start,end fragment already seeks).
document.querySelectorAll("video.player").forEach(function (v) {
  var end = parseFloat(v.dataset.end);
  var start = parseFloat(v.dataset.start);
  v.addEventListener("timeupdate", function () {
    if (!isNaN(end) && v.currentTime >= end && !v.paused) { v.pause(); }
  });
  v.addEventListener("play", function () {
    if (!isNaN(start) && (v.currentTime < start - 0.5 || v.currentTime >= end)) { v.currentTime = start; }
  });
});
