// Words of the page's language, from the <body>'s data-t-* attributes (English if missing).
function t(key, fallback) {
  var v = document.body && document.body.dataset["t" + key.charAt(0).toUpperCase() + key.slice(1)];
  return v || fallback;
}

// Result players: each shows its event's frame (the poster) and start time, plays from the
// event's start and stops at its end. A clip that is still being prepared (the server
// answers 503 + Retry-After while it transcodes) shows that it is being prepared, is asked
// for again every second, and starts playing by itself once ready if the user pressed play.
// The page works without this script (the #t=start,end fragment already seeks).
document.querySelectorAll("video.player").forEach(function (v) {
  var end = parseFloat(v.dataset.end);
  var start = parseFloat(v.dataset.start);
  var retries = 0;
  var wanted = false;
  var note = null;
  var began = 0;
  function say(text) {
    if (!note) {
      note = document.createElement("span");
      note.className = "clip-note";
      note.setAttribute("role", "status");
      v.insertAdjacentElement("afterend", note);
    }
    note.textContent = text;
    note.hidden = !text;
  }
  v.addEventListener("timeupdate", function () {
    if (!isNaN(end) && v.currentTime >= end && !v.paused) { v.pause(); }
  });
  v.addEventListener("loadedmetadata", function () {
    if (!isNaN(start) && Math.abs(v.currentTime - start) > 0.25) { v.currentTime = start; }
  });
  v.addEventListener("play", function () {
    wanted = true;
    if (!isNaN(start) && (v.currentTime < start - 0.5 || v.currentTime >= end)) { v.currentTime = start; }
  });
  v.addEventListener("pause", function () { if (v.readyState >= 2) { wanted = false; } });
  v.addEventListener("canplay", function () {
    if (retries > 0) { say(""); }
    if (wanted && v.paused) {
      var p = v.play();
      if (p && p.catch) { p.catch(function () {}); }
    }
  });
  v.addEventListener("error", function () {
    if (retries >= 120) { say(t("failedClip", "The clip could not be prepared.")); return; }
    if (retries === 0) { began = Date.now(); }
    retries += 1;
    say(t("preparing", "Preparing the clip…") + " " + Math.round((Date.now() - began) / 1000) + " s");
    var src = v.getAttribute("src");
    setTimeout(function () {
      v.setAttribute("src", src);
      v.preload = "auto";
      v.load();
    }, 1000);
  });
});

// Video page: seek from the timeline, the event list and the transcript; highlight the
// event and the line being played.
(function () {
  var watch = document.querySelector(".watch");
  if (watch) {  // place the timeline's events (set from script: the CSP allows no inline style)
    var total = parseFloat(watch.dataset.duration) || 1;
    watch.querySelectorAll(".tl-event").forEach(function (el) {
      var a = parseFloat(el.dataset.start), b = parseFloat(el.dataset.end);
      el.style.left = (100 * a / total) + "%";
      el.style.width = Math.max(0.4, 100 * (b - a) / total) + "%";
    });
  }
  var player = document.getElementById("main-player");
  if (!player) { return; }
  var start = parseFloat(player.dataset.t || "0");
  player.addEventListener("loadedmetadata", function () {
    if (start > 0 && Math.abs(player.currentTime - start) > 0.25) { player.currentTime = start; }
  });
  function seek(t) {
    player.currentTime = t;
    var p = player.play();
    if (p && p.catch) { p.catch(function () {}); }
  }
  document.querySelectorAll(".tl-event, a.seek").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      seek(parseFloat(a.dataset.t || a.dataset.start));
    });
  });
  // a click anywhere on an event row or a transcript line seeks (its own links keep their job)
  document.querySelectorAll(".event-list li, .lines li").forEach(function (row) {
    row.addEventListener("click", function (ev) {
      if (ev.target.closest("a, button, video, input")) { return; }
      seek(parseFloat(row.dataset.start));
    });
  });
  // keyboard: space plays or pauses, j / k jump to the previous / next event
  var starts = Array.prototype.map.call(document.querySelectorAll(".event-list li"), function (li) {
    return parseFloat(li.dataset.start);
  }).filter(function (x) { return !isNaN(x); }).sort(function (a, b) { return a - b; });
  document.addEventListener("keydown", function (ev) {
    var tag = (document.activeElement && document.activeElement.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var t = player.currentTime;
    if (ev.key === " " && tag !== "BUTTON" && tag !== "VIDEO") {
      ev.preventDefault();
      if (player.paused) { seek(t); } else { player.pause(); }
    } else if (ev.key === "k") {
      var next = starts.filter(function (s) { return s > t + 0.3; })[0];
      if (next !== undefined) { seek(next); }
    } else if (ev.key === "j") {
      var prev = starts.filter(function (s) { return s < t - 1.0; }).pop();
      seek(prev === undefined ? 0 : prev);
    }
  });
  // a link to the moment being watched
  var copy = document.getElementById("copy-moment");
  var box = document.getElementById("moment-url");
  if (copy && box) {
    copy.addEventListener("click", function () {
      var url = copy.dataset.base + "?t=" + player.currentTime.toFixed(1);
      box.value = url;
      box.hidden = false;
      box.select();
      var done = function () { copy.textContent = t("copied", "link copied"); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(url).then(done, function () {});
      } else {
        try { if (document.execCommand("copy")) { done(); } } catch (e) { /* the box shows it to copy by hand */ }
      }
    });
  }
  var marked = document.querySelectorAll("[data-start][data-end]:not(video)");
  player.addEventListener("timeupdate", function () {
    var t = player.currentTime;
    marked.forEach(function (el) {
      var on = t >= parseFloat(el.dataset.start) && t < parseFloat(el.dataset.end);
      el.classList.toggle("current", on);
    });
  });
})();

// Status page: refresh states and progress bars from /api/status without a full reload.
(function () {
  var table = document.getElementById("files");
  if (!table) { return; }
  var names = JSON.parse(table.dataset.stateNames || "{}");
  function refresh() {
    fetch("/api/status", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var known = {};
        table.querySelectorAll("tr[data-path]").forEach(function (tr) { known[tr.dataset.path] = tr; });
        var added = false;
        data.videos.forEach(function (v) {
          var tr = known[v.path];
          if (!tr) { added = true; return; }
          if (tr.className !== "state-" + v.state && (v.state === "done" || v.state === "failed")) { added = true; }
          tr.className = "state-" + v.state;
          tr.querySelector(".state").textContent = names[v.state] || v.state;
          tr.querySelector("progress").value = v.progress;
          tr.querySelector(".message").textContent = v.state === "processing" && v.message ? v.message : "";
          tr.querySelector(".events").textContent = v.events;
        });
        if (added) { window.location.reload(); }
      }).catch(function () {});
  }
  setInterval(refresh, 2000);
})();

// Keyboard: "/" focuses the search box, arrows move between hits, Enter plays the one in focus.
(function () {
  var box = document.querySelector("form.search input[name=q]");
  var hits = Array.prototype.slice.call(document.querySelectorAll("li.hit"));
  document.addEventListener("keydown", function (ev) {
    var tag = (document.activeElement && document.activeElement.tagName) || "";
    var typing = tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA";
    if (ev.key === "/" && !typing && box) { ev.preventDefault(); box.focus(); box.select(); return; }
    if (!hits.length || (typing && ev.key !== "ArrowDown")) { return; }
    var i = hits.indexOf(document.activeElement);
    if (ev.key === "ArrowDown") { ev.preventDefault(); hits[Math.min(hits.length - 1, i + 1)].focus(); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); if (i > 0) { hits[i - 1].focus(); } else if (box) { box.focus(); } }
    else if (ev.key === "Enter" && i >= 0) {
      ev.preventDefault();
      var v = hits[i].querySelector("video");
      if (v) { var p = v.play(); if (p && p.catch) { p.catch(function () {}); } }
    }
  });
})();
