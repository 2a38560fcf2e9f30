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
function initPlayer(v) {
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
}
document.querySelectorAll("video.player").forEach(initPlayer);

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

// Ask page: the answer streams in as the model writes it (NDJSON from POST /api/ask); then
// its [n] markers link to the citations, each a player of its moment. Without this script
// the form asks the server, which renders the whole answer.
(function () {
  var form = document.getElementById("ask-form");
  var box = document.getElementById("answer");
  if (!form || !box) { return; }
  function say(key, fallback) { return box.dataset["t" + key.charAt(0).toUpperCase() + key.slice(1)] || fallback; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function ts(sec) {
    sec = Math.max(0, Math.floor(sec));
    var h = Math.floor(sec / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
    var mm = (m < 10 ? "0" : "") + m, ss = (s < 10 ? "0" : "") + s;
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
  }
  function play(n) {
    var li = document.getElementById("cite-" + n);
    if (!li) { return; }
    li.scrollIntoView({ block: "nearest" });
    var v = li.querySelector("video");
    if (v) { var p = v.play(); if (p && p.catch) { p.catch(function () {}); } }
  }
  box.addEventListener("click", function (ev) {
    var a = ev.target.closest("a.cite");
    if (a) { ev.preventDefault(); play(a.dataset.n); }
  });
  function render(done) {
    box.textContent = "";
    var text = el("p", "answer-text");
    var known = {};
    done.citations.forEach(function (c) { known[c.n] = true; });
    done.answer.split(/(\[\d+\])/).forEach(function (part) {
      var m = /^\[(\d+)\]$/.exec(part);
      if (m && known[m[1]]) {
        var a = el("a", "cite", part);
        a.href = "#cite-" + m[1];
        a.dataset.n = m[1];
        text.appendChild(a);
      } else if (part) {
        text.appendChild(document.createTextNode(part));
      }
    });
    box.appendChild(text);
    if (done.note) { box.appendChild(el("p", "note", done.note)); }
    var list = el("ol", "citations");
    done.citations.forEach(function (c) {
      var li = el("li", "citation");
      li.id = "cite-" + c.n;
      var v = el("video", "player");
      v.controls = true;
      v.preload = "none";
      v.setAttribute("playsinline", "");
      v.poster = c.thumbnail_url;
      v.src = c.clip_url;
      v.dataset.start = c.clip_start;
      v.dataset.end = c.clip_end;
      li.appendChild(v);
      var meta = el("div", "meta");
      var when = el("p", "when");
      when.appendChild(el("span", "n", "[" + c.n + "]"));
      when.appendChild(document.createTextNode(" "));
      when.appendChild(el("span", "range", ts(c.start_sec) + "–" + ts(c.end_sec)));
      when.appendChild(document.createTextNode(" "));
      var open = el("a", "video", c.video_path.split("/").pop());
      open.href = "/videos/" + c.video_id + "?t=" + c.start_sec.toFixed(2);
      when.appendChild(open);
      when.appendChild(document.createTextNode(" "));
      when.appendChild(el("span", "source", c.source));
      meta.appendChild(when);
      meta.appendChild(el("p", "snippet", "\u201c" + c.text.slice(0, 400) + "\u201d"));
      li.appendChild(meta);
      list.appendChild(li);
      initPlayer(v);
    });
    box.appendChild(list);
  }
  form.addEventListener("submit", function (ev) {
    if (!window.fetch || !window.TextDecoder) { return; }  // the server answers instead
    var q = form.querySelector("input[name=q]").value.trim();
    if (!q) { return; }
    ev.preventDefault();
    var body = { question: q, stream: true };
    var video = form.querySelector("input[name=video]");
    if (video) { body.video = video.value; }
    history.replaceState(null, "", "?q=" + encodeURIComponent(q) + (video ? "&video=" + encodeURIComponent(video.value) : ""));
    box.textContent = "";
    var status = el("p", "note", say("thinking", "Looking through the library…"));
    var text = el("p", "answer-text streaming");
    box.appendChild(status);
    box.appendChild(text);
    fetch("/api/ask", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/x-ndjson" },
      body: JSON.stringify(body)
    }).then(function (resp) {
      if (!resp.ok) {
        return resp.json().then(function (e) { status.textContent = e.error || say("failed", "The answer could not be made."); });
      }
      var reader = resp.body.getReader();
      var dec = new TextDecoder();
      var buf = "";
      function handle(line) {
        if (!line.trim()) { return; }
        var item = JSON.parse(line);
        if (item.type === "evidence") { status.textContent = say("writing", "Writing the answer…"); }
        else if (item.type === "delta") { text.textContent += item.text; }
        else if (item.type === "done") { render(item); }
        else if (item.type === "error") { status.textContent = item.error; }
      }
      function pump() {
        return reader.read().then(function (r) {
          buf += dec.decode(r.value || new Uint8Array(), { stream: !r.done });
          var lines = buf.split("\n");
          buf = lines.pop();
          lines.forEach(handle);
          if (r.done) { handle(buf); return; }
          return pump();
        });
      }
      return pump();
    }).catch(function () { status.textContent = say("failed", "The answer could not be made."); });
  });
})();

// Video page: a summary a language model still has to write is fetched once the page is shown.
(function () {
  var sec = document.getElementById("video-summary");
  if (!sec || !sec.querySelector(".summary-pending")) { return; }
  fetch(sec.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
    .then(function (data) {
      var pending = sec.querySelector(".summary-pending");
      if (!data) { pending.remove(); return; }
      var p = document.createElement("p");
      p.className = "summary-text";
      p.textContent = data.summary;
      pending.replaceWith(p);
      if (data.chapters.length > 1) {
        var ol = document.createElement("ol");
        ol.className = "chapters";
        data.chapters.forEach(function (ch) {
          var li = document.createElement("li");
          var a = document.createElement("a");
          var s = Math.floor(ch.start_sec);
          a.href = "?t=" + ch.start_sec.toFixed(2);
          a.textContent = Math.floor(s / 60) + ":" + ("0" + s % 60).slice(-2);
          li.appendChild(a);
          li.appendChild(document.createTextNode(" " + ch.title));
          ol.appendChild(li);
        });
        sec.appendChild(ol);
      }
    }).catch(function () {});
})();
