// meshstream live preview: frames over a WebSocket, numbers, a 3D view, Stop and Record.
"use strict";
const view = document.getElementById("view");
const canvas = document.getElementById("view3d");
const ctx = canvas.getContext("2d");
const el = (id) => document.getElementById(id);
let header = null, lastUrl = null, lastMeta = null, stopped = false, lastDigest = null;
let yaw = -0.6, pitch = 0.35, dist = 6.0, drag = null;
const COLOURS = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"];

function ms(v) { return v === null || v === undefined ? "–" : v.toFixed(0) + " ms"; }

function showStats(s) {
  el("fps").textContent = s.fps.toFixed(1) + " frames/s (" + s.processed + " frames)";
  el("latency").textContent = "p50 " + ms(s.latency_display_ms.p50) + ", p95 " + ms(s.latency_display_ms.p95);
  el("ready").textContent = "p50 " + ms(s.latency_ready_ms.p50) + ", p95 " + ms(s.latency_ready_ms.p95);
  el("dropped").textContent = s.dropped + " of " + s.captured;
  el("persons").textContent = s.persons;
  let focal = s.focal_px === null ? "estimating" : s.focal_px.toFixed(1) + " px (" + s.focal_state + ")";
  if (s.focal_px === null && s.focal_progress) {
    const p = s.focal_progress;
    focal += ": " + p[0] + " person-frames, frame " + p[1] + " of at most " + p[2];
  }
  el("focal").textContent = focal;
  el("recorded").textContent = s.recorded + (s.recording ? " (recording)" : " (paused)");
  el("elapsed").textContent = s.elapsed_s.toFixed(1) + " s";
  el("record").textContent = s.recording ? "Pause recording" : "Record";
  document.body.dataset.statsUpdates = String(Number(document.body.dataset.statsUpdates) + 1);
  document.body.dataset.processed = String(s.processed);
}

// A small digest of the shown image, so that a test can tell frames change.
function digest(img) {
  const c = document.createElement("canvas");
  c.width = 32; c.height = 24;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0, 32, 24);
  const d = g.getImageData(0, 0, 32, 24).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i] * (i % 97) + d[i + 1];
  return sum;
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.binaryType = "blob";
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") { header = JSON.parse(ev.data); showStats(header.stats); return; }
    const meta = header, url = URL.createObjectURL(ev.data);
    view.onload = () => {
      if (lastUrl) URL.revokeObjectURL(lastUrl);
      lastUrl = url;
      ws.send(JSON.stringify({ shown: meta.seq }));
      const b = document.body.dataset;
      b.framesShown = String(Number(b.framesShown) + 1);
      const dg = digest(view);
      if (lastDigest !== null && dg !== lastDigest) b.framesChanged = String(Number(b.framesChanged) + 1);
      lastDigest = dg;
      lastMeta = meta;
      draw3d();
    };
    view.src = url;
  };
  ws.onclose = () => { el("state").textContent = stopped ? "stopped" : "disconnected: the run has ended"; };
}

// 3D view: orbit camera around a point 3 m in front of the video camera.
function project(p) {
  const cx = p[0], cy = p[1], cz = p[2] - 3.0;
  const x1 = Math.cos(yaw) * cx + Math.sin(yaw) * cz, z1 = -Math.sin(yaw) * cx + Math.cos(yaw) * cz;
  const y2 = Math.cos(pitch) * cy - Math.sin(pitch) * z1, z2 = Math.sin(pitch) * cy + Math.cos(pitch) * z1;
  const depth = z2 + dist;
  if (depth < 0.1) return null;
  const f = 300;
  return [canvas.width / 2 + f * x1 / depth, canvas.height / 2 + f * y2 / depth];
}

function line(a, b, colour, width) {
  const p = project(a), q = project(b);
  if (!p || !q) return;
  ctx.strokeStyle = colour; ctx.lineWidth = width;
  ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
}

function draw3d() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (let x = -3; x <= 3; x += 1) line([x, 1.6, 0.5], [x, 1.6, 8], "#2a2f36", 1);  // a floor guess, 1.6 m below the camera
  for (let z = 1; z <= 8; z += 1) line([-3, 1.6, z], [3, 1.6, z], "#2a2f36", 1);
  line([0, 0, 0], [0.5, 0, 0], "#d44", 2); line([0, 0, 0], [0, 0.5, 0], "#4d4", 2); line([0, 0, 0], [0, 0, 0.5], "#48f", 2);
  const m = lastMeta;
  if (!m) return;
  if (m.focal_px) {  // the frustum to 1 m
    const [px, py] = m.principal_point, f = m.focal_px;
    const corners = [[0, 0], [m.width, 0], [m.width, m.height], [0, m.height]].map(([u, v]) => [(u - px) / f, (v - py) / f, 1]);
    corners.forEach((c, i) => { line([0, 0, 0], c, "#aaa", 1); line(c, corners[(i + 1) % 4], "#aaa", 1); });
  }
  for (const b of m.bodies) {
    const colour = COLOURS[(b.id - 1) % COLOURS.length];
    for (const [i, j] of m.limbs) line(b.keypoints3d[i], b.keypoints3d[j], colour, 3);
  }
}

canvas.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY]; });
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", (e) => {
  if (!drag) return;
  yaw += (e.clientX - drag[0]) * 0.01; pitch = Math.max(-1.4, Math.min(1.4, pitch + (e.clientY - drag[1]) * 0.01));
  drag = [e.clientX, e.clientY]; draw3d();
});
canvas.addEventListener("wheel", (e) => { e.preventDefault(); dist = Math.max(1, Math.min(30, dist * (e.deltaY > 0 ? 1.1 : 0.9))); draw3d(); });

el("stop").addEventListener("click", async () => {
  stopped = true;
  el("stop").disabled = true;
  el("state").textContent = "stopping: finishing the store";
  await fetch("/api/stop", { method: "POST" });
});
el("record").addEventListener("click", async () => {
  const r = await (await fetch("/api/record", { method: "POST" })).json();
  el("record").textContent = r.recording ? "Pause recording" : "Record";
});

draw3d();
connect();
