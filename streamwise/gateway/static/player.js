// StreamWise page: submit a podcast, play it with Media Source Extensions fed from the gateway's
// WebSocket (/v1/podcasts/{id}/live), and show its status from server-sent events (/events).
// No player library: MSE is native in Chromium, Firefox and Safari 17+. The HLS mode
// (/?player=hls, or the player menu) plays the live playlist with the vendored hls.js instead.
"use strict";

// What the page saw, for people (the panel) and for the browser test (window.sw).
const sw = window.sw = {
  id: null, submitAt: null, acceptedAt: null, firstFrameAt: null, playingAt: null,
  firstFrameMs: null, mime: null, supported: null, segmentsReceived: 0, ended: false,
  error: null, status: null, player: null,
};
let firstSegment = null;            // resolves when the status stream reports the first segment
const firstSegmentSeen = new Promise((resolve) => { firstSegment = resolve; });

const $ = (id) => document.getElementById(id);
const wanted = new URLSearchParams(location.search).get("player");
if (wanted === "hls" || wanted === "mse") document.getElementById("player").value = wanted;
const video = $("video");
const KEEP_BEHIND_S = 30;   // buffered media older than this behind the playhead is released

function showError(text) {
  sw.error = text;
  $("error").textContent = text || "";
}

async function submit(ev) {
  ev.preventDefault();
  showError("");
  const file = $("file").files[0];
  const script = $("script").value;
  const topic = $("topic").value.trim();
  const [width, height] = $("size").value.split("x").map(Number);
  const options = { width, height };
  const ttff = $("ttff").value.trim();
  if (ttff) options.ttff_s = Number(ttff);
  let init;
  if (file) {
    const form = new FormData();
    form.append("file", file, file.name);
    for (const [k, v] of Object.entries(options)) form.append(k, String(v));
    init = { method: "POST", body: form };
  } else {
    const body = { ...options };
    if (script.trim()) { body.script = script; body.script_name = "pasted script"; }
    else if (topic) body.topic = topic;
    else { showError("paste a script, choose a file or give a topic"); return; }
    init = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  }
  $("start").disabled = true;
  sw.submitAt = performance.now();
  let resp, answer;
  try {
    resp = await fetch("/v1/podcasts", init);
    answer = await resp.json();
  } catch (e) {
    showError(`could not reach the gateway: ${e}`);
    $("start").disabled = false;
    return;
  }
  if (!resp.ok) {
    showError(answer.error || `HTTP ${resp.status}`);
    $("start").disabled = false;
    return;
  }
  sw.acceptedAt = performance.now();
  sw.id = answer.id;
  sw.tasks = [];
  $("p-id").textContent = answer.id;
  sw.player = $("player").value;
  $("end").disabled = $("skip").disabled = false;
  sw.topic = !file && !script.trim() && !!topic;   // a direction steers only what the LLM writes
  $("direction").disabled = $("direct").disabled = !sw.topic;
  watchFirstFrame();
  if (sw.player === "hls") playHls(answer.urls.hls);
  else play(answer.urls.live);
  follow(answer.urls.events);
}

function watchFirstFrame() {
  video.requestVideoFrameCallback((now) => {           // the first frame painted
    sw.firstFrameAt = now;
    sw.firstFrameMs = now - sw.submitAt;
    $("p-frame").textContent = `${(sw.firstFrameMs / 1000).toFixed(2)} s after Start`;
  });
  video.addEventListener("playing", () => { if (sw.playingAt === null) sw.playingAt = performance.now(); });
  video.addEventListener("ended", () => { sw.ended = true; });
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement("script");
    el.src = src;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(el);
  });
}

async function playHls(playlistUrl) {
  try {
    await loadScript("/static/vendor/hls.light.min.js");
  } catch (e) { showError(String(e)); return; }
  if (!window.Hls || !Hls.isSupported()) { showError("hls.js cannot play in this browser (no MSE)"); return; }
  await firstSegmentSeen;                              // an EVENT playlist with no segment yet is an error to hls.js
  const hls = new Hls({ startPosition: 0, backBufferLength: KEEP_BEHIND_S });
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) showError(`hls.js: ${d.type}: ${d.details}`); });
  hls.loadSource(playlistUrl);
  hls.attachMedia(video);
  video.play().catch(() => {});
}

function play(liveUrl) {
  const ms = new MediaSource();
  video.src = URL.createObjectURL(ms);
  video.play().catch(() => {});                        // muted: autoplay is allowed
  ms.addEventListener("sourceopen", () => {
    const queue = [];      // {mime} (a new encoding) or {data}
    let header = null, sb = null, endOfShow = false, next = 0, retries = 0;

    function pump() {
      if (!sb || sb.updating) return;
      const t = video.currentTime;
      if (sb.buffered.length && t - sb.buffered.start(0) > 2 * KEEP_BEHIND_S) {
        sb.remove(0, t - KEEP_BEHIND_S);                 // bounded memory in the page too
        return;
      }
      const item = queue.shift();
      if (item) {
        if (item.mime) { sb.changeType(item.mime); pump(); return; }
        try { sb.appendBuffer(item.data); } catch (e) { showError(`append failed: ${e}`); }
      } else if (endOfShow && ms.readyState === "open") {
        ms.endOfStream();
      }
    }

    function connect() {   // (re)connect from the next segment this page has not received
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(`${scheme}${location.host}${liveUrl}?from=${next}`);
      ws.binaryType = "arraybuffer";
      ws.onmessage = (ev) => {
        if (typeof ev.data === "string") {
          const m = JSON.parse(ev.data);
          if (m.type === "end") { endOfShow = true; sw.ended = true; if (m.error) showError(m.error); pump(); }
          else if (m.type === "error") showError(m.error);
          else header = m;
          return;
        }
        const m = header;
        header = null;
        if (!m) return;
        retries = 0;
        if (m.type === "init") {
          sw.mime = m.mime;
          sw.supported = MediaSource.isTypeSupported(m.mime);
          if (!sw.supported) { showError(`this browser cannot play ${m.mime}`); endOfShow = true; ws.close(); return; }
          if (!sb) {
            sb = ms.addSourceBuffer(m.mime);
            sb.mode = "segments";                         // timestamps are absolute in every segment
            sb.addEventListener("updateend", pump);
          } else {
            queue.push({ mime: m.mime });                 // a new encoding, or the same one after a reconnect
          }
        } else {
          if (m.index !== next) return;                   // not the one expected (cannot happen in order)
          next += 1;
          sw.segmentsReceived = next;
        }
        queue.push({ data: ev.data });
        pump();
      };
      ws.onclose = () => {
        if (endOfShow) return;
        if (retries >= 5) { showError("the live connection closed (5 retries)"); return; }
        retries += 1;
        setTimeout(connect, 500 * 2 ** retries);          // resume where it stopped
      };
    }
    connect();
  }, { once: true });
}

function rungClass(rung) {
  return ["high", "medium", "low", "static", "still"].includes(rung) ? `rung-${rung}` : "rung-other";
}

const timeline = { segments: [], total: null };

function drawTimeline() {
  const el = $("timeline");
  const end = Math.max(timeline.total || 0, ...timeline.segments.map((s) => s.start_s + s.duration_s), 1);
  el.replaceChildren(...timeline.segments.map((s) => {
    const d = document.createElement("div");
    d.className = `seg ${rungClass(s.rung)}`;
    d.style.left = `${(100 * s.start_s) / end}%`;
    d.style.width = `${(100 * s.duration_s) / end}%`;
    d.title = `segment ${s.index}: ${s.rung} ${s.width}x${s.height}, arrived ${s.arrived_s} s`;
    return d;
  }));
  const head = document.createElement("div");
  head.className = "head";
  head.style.left = `${(100 * video.currentTime) / end}%`;
  el.appendChild(head);
}

// the request's tasks as a Gantt chart per instance, live (what `streamwise timeline` draws afterwards)
const STAGE_COLOURS = { screenplay: "#6a3d9a", image: "#1f78b4", tts: "#33a02c", video: "#ff7f00", mux: "#e31a1c" };
sw.tasks = [];
let ganttQueued = false;

function drawGantt() {
  ganttQueued = false;
  const canvas = $("gantt"), ctx = canvas.getContext("2d");
  const rows = [...new Set(sw.tasks.map((t) => t.instance))];
  sw.ganttRows = rows;
  const label = 150, rowH = 20, top = 4;
  canvas.height = Math.max(40, top + rows.length * rowH + 16);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const end = Math.max(1, ...sw.tasks.map((t) => Math.max(t.end_s, t.deadline_s || 0)));
  const x = (sec) => label + ((canvas.width - label - 4) * sec) / end;
  ctx.font = "10px sans-serif";
  let bars = 0;
  rows.forEach((instance, i) => {
    const y = top + i * rowH;
    ctx.fillStyle = "#333";
    ctx.fillText(instance.length > 26 ? instance.slice(0, 25) + "…" : instance, 2, y + 13);
    for (const t of sw.tasks.filter((task) => task.instance === instance)) {
      ctx.fillStyle = t.ok ? (STAGE_COLOURS[t.stage] || "#888") : "#000";
      const w = Math.max(1, x(t.end_s) - x(t.start_s));
      ctx.fillRect(x(t.start_s), y + 3, w, rowH - 6);
      if (t.rung === "still") {       // hatched, as the timeline PNG marks a still clip
        ctx.strokeStyle = "#fff";
        ctx.strokeRect(x(t.start_s) + 1, y + 5, Math.max(1, w - 2), rowH - 10);
      }
      if (t.deadline_s !== null) {
        ctx.fillStyle = t.end_s > t.deadline_s ? "#d00" : "#222";
        ctx.fillRect(x(t.deadline_s), y + 1, 1, rowH - 2);
      }
      bars += 1;
    }
  });
  ctx.fillStyle = "#555";
  ctx.fillText(`0 s`, label, canvas.height - 3);
  ctx.fillText(`${end.toFixed(0)} s since the request`, canvas.width - 130, canvas.height - 3);
  sw.ganttBars = bars;
}

function render(s) {
  sw.status = s;
  $("p-state").textContent = s.error ? `${s.state}: ${s.error}` : (s.message ? `${s.state} (${s.message})` : s.state);
  $("p-speakers").textContent = s.speakers.length ? s.speakers.join(", ") : "–";
  $("p-lines").textContent = `${s.lines}${s.screenplay_done ? " (complete)" : ""}`;
  $("p-speech").textContent = String(s.dag.speech);
  $("p-shots").textContent = String(s.dag.shots);
  $("p-cache").textContent = String(s.cache_hits);
  $("p-segments").textContent = `${s.segments_done}${s.segments_total ? " / " + s.segments_total : ""} / ${sw.segmentsReceived}`;
  $("p-delivered").textContent = `${s.delivered_s.toFixed(1)} s${s.video_duration_s ? " of " + s.video_duration_s.toFixed(1) + " s" : ""}`;
  $("p-ttff").textContent = s.ttff_s === null ? "–" : `${s.ttff_s.toFixed(2)} s`;
  $("p-stall").textContent = `${s.stall_s.toFixed(2)} s`;
  timeline.total = s.video_duration_s;
  if (s.error) showError(s.error);
  if (s.ended || ["done", "failed"].includes(s.state)) {
    $("end").disabled = $("skip").disabled = $("direction").disabled = $("direct").disabled = true;
  }
  $("p-steers").textContent = (s.steers || []).length ? s.steers.map((r) => `"${r.direction}" from line ${r.first_line + 1}`
    + (r.steer_to_screen_s === null ? " (writing)" : ` (${r.steer_to_screen_s.toFixed(2)} s)`)).join("; ") : "–";
}

async function steer(action, direction) {
  if (action === "end") $("end").disabled = $("skip").disabled = true;
  const body = direction === undefined ? { action } : { action, direction };
  const resp = await fetch(`/v1/podcasts/${sw.id}/steer`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await resp.json();
  sw.steer = answer;
  $("steer").textContent = !resp.ok ? answer.error
    : action === "end" ? `ends after line ${answer.last_line + 1}`
    : action === "direct" ? `the LLM continues after line ${answer.last_line + 1}`
      + (answer.replaced.length ? ` (replacing ${answer.replaced.length} line${answer.replaced.length > 1 ? "s" : ""})` : "")
    : `skips line ${answer.skipped.map((i) => i + 1).join(", ")}`;
}

function follow(eventsUrl) {
  const es = new EventSource(eventsUrl);
  es.addEventListener("status", (e) => render(JSON.parse(e.data)));
  const seen = new Set();   // an EventSource that reconnects gets the segments again
  es.addEventListener("segment", (e) => {
    const seg = JSON.parse(e.data);
    if (seen.has(seg.index)) return;
    seen.add(seg.index);
    if (sw.player === "hls") sw.segmentsReceived = seen.size;   // what the playlist lists
    firstSegment();
    timeline.segments.push(seg);
    const chip = document.createElement("span");
    chip.className = `chip ${rungClass(seg.rung)}`;
    chip.textContent = seg.index;
    chip.title = `${seg.rung} ${seg.width}x${seg.height}`;
    if ($("p-rungs").textContent === "–") $("p-rungs").textContent = "";
    $("p-rungs").appendChild(chip);
    drawTimeline();
  });
  const tasksSeen = new Set();
  es.addEventListener("task", (e) => {
    const t = JSON.parse(e.data);
    const key = `${t.node}@${t.instance}@${t.start_s}`;
    if (tasksSeen.has(key)) return;    // a reconnected EventSource sends them again
    tasksSeen.add(key);
    sw.tasks.push(t);
    if (!ganttQueued) { ganttQueued = true; requestAnimationFrame(drawGantt); }
  });
  es.addEventListener("end", () => { es.close(); drawGantt(); });
}

video.addEventListener("timeupdate", drawTimeline);
$("form").addEventListener("submit", submit);
$("end").addEventListener("click", () => steer("end"));
$("skip").addEventListener("click", () => steer("skip"));
$("direct-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const direction = $("direction").value.trim();
  if (direction) steer("direct", direction);
});
