// Optional enhancement: stop each clip at its event's end time, and retry a clip that is
// still being prepared (the server answers 503 + Retry-After while it transcodes).
// The page works without it (the #t=start,end fragment already seeks).
document.querySelectorAll("video.player").forEach(function (v) {
  var end = parseFloat(v.dataset.end);
  var start = parseFloat(v.dataset.start);
  var retries = 0;
  v.addEventListener("timeupdate", function () {
    if (!isNaN(end) && v.currentTime >= end && !v.paused) { v.pause(); }
  });
  v.addEventListener("play", function () {
    if (!isNaN(start) && (v.currentTime < start - 0.5 || v.currentTime >= end)) { v.currentTime = start; }
  });
  v.addEventListener("error", function () {
    if (retries >= 60) { return; }
    retries += 1;
    var src = v.getAttribute("src");
    setTimeout(function () { v.setAttribute("src", src); v.load(); }, 1000);
  });
});
