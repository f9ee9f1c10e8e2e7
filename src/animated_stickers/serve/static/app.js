// Animated stickers page: pick/drop a sticker (or generate one), set guidance, animate, download.
// Plain browser JS, no build step. Talks to the JSON/multipart API of the same server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, resultId: null, resultUrl: null, busy: false, info: null };

function newRequestId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

function setStatus(text, { busy = false, error = false } = {}) {
  $("status-text").textContent = text;
  $("spinner").hidden = !busy;
  $("status").classList.toggle("error", error);
}

async function errorText(resp) {
  // Every API error is JSON {"error": "..."}; fall back to the status line otherwise.
  try { const body = await resp.json(); if (body && body.error) return body.error; } catch (e) { /* not JSON */ }
  return `${resp.status} ${resp.statusText}`;
}

function updateButtons() {
  $("animate-btn").disabled = state.busy || !state.file || !$("prompt").value.trim();
  $("gen-btn").disabled = state.busy || !(state.info && state.info.generate) || !$("gen-prompt").value.trim();
}

function useFile(file) {
  if (!file) return;
  state.file = file;
  const preview = $("input-preview");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-hint").hidden = true;
  setStatus(`Sticker: ${file.name || "generated"} (${Math.round(file.size / 1024)} KB).`);
  updateButtons();
}

// Progress: elapsed time ticks locally; queue position / sampling step come from /v1/progress/{id}.
function startProgress(label, requestId) {
  const t0 = performance.now();
  let detail = "sending…";
  const tick = () => setStatus(`${label}: ${detail} · ${((performance.now() - t0) / 1000).toFixed(1)} s`,
                               { busy: true });
  tick();
  const timer = setInterval(tick, 100);
  const poll = setInterval(async () => {
    try {
      const r = await fetch(`/v1/progress/${requestId}`);
      if (!r.ok) return;
      const p = await r.json();
      if (p.state === "queued") detail = p.position > 0 ? `queued, ${p.position} ahead` : "queued, next";
      else if (p.state === "running") {
        detail = p.total ? `sampling step ${p.step}/${p.total}` : "sampling";
        if (p.batch_size > 1) detail += ` (batch of ${p.batch_size})`;
      } else detail = "encoding";
    } catch (e) { /* keep the last detail */ }
  }, 400);
  return () => { clearInterval(timer); clearInterval(poll); return (performance.now() - t0) / 1000; };
}

function showResult(blob, format, resultId) {
  const img = $("result"), video = $("result-video");
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  state.resultId = resultId;
  const isVideo = format === "webm";
  img.hidden = isVideo; video.hidden = !isVideo; $("stage-hint").hidden = true;
  if (isVideo) { video.src = state.resultUrl; img.removeAttribute("src"); }
  else { img.src = state.resultUrl; video.removeAttribute("src"); }
  img.dataset.format = format;
  for (const fmt of ["webp", "gif", "webm"]) {
    // The requested format downloads the bytes we already have; the others are re-encoded server-side.
    $(`dl-${fmt}`).href = fmt === format ? state.resultUrl : `/v1/results/${resultId}?format=${fmt}`;
  }
  $("downloads").hidden = false;
  $("preset-row").hidden = !$("preset-select").options.length;
  updatePresetLink();
}

function updatePresetLink() {
  const name = $("preset-select").value;
  if (state.resultId && name) $("dl-preset").href = `/v1/results/${state.resultId}?preset=${encodeURIComponent(name)}`;
}

async function animate() {
  if (state.busy || !state.file) return;
  state.busy = true; updateButtons();
  const requestId = newRequestId();
  const format = $("format").value;
  const form = new FormData();
  form.append("image", state.file, state.file.name || "sticker.png");
  form.append("prompt", $("prompt").value.trim());
  form.append("image_guidance", $("image-guidance").value);
  form.append("text_guidance", $("text-guidance").value);
  if ($("steps").value) form.append("steps", $("steps").value);
  if ($("seed").value) form.append("seed", $("seed").value);
  form.append("format", format);
  form.append("request_id", requestId);
  const stop = startProgress("Animating", requestId);
  try {
    const resp = await fetch("/v1/animate", { method: "POST", body: form });
    const secs = stop();
    if (!resp.ok) { setStatus(`Error: ${await errorText(resp)}`, { error: true }); return; }
    const blob = await resp.blob();
    showResult(blob, format, resp.headers.get("X-Result-Id"));
    const batch = resp.headers.get("X-Batch-Size");
    setStatus(`Done in ${secs.toFixed(1)} s` + (batch > 1 ? ` (shared a batch of ${batch})` : "") +
              ` · ${Math.round(blob.size / 1024)} KB ${format.toUpperCase()}`);
    $("result").dataset.done = "1";
  } catch (e) {
    stop();
    setStatus(`Error: could not reach the server (${e.message})`, { error: true });
  } finally {
    state.busy = false; updateButtons();
  }
}

async function generate() {
  if (state.busy) return;
  state.busy = true; updateButtons();
  const requestId = newRequestId();
  const form = new FormData();
  form.append("prompt", $("gen-prompt").value.trim());
  form.append("request_id", requestId);
  const stop = startProgress("Generating sticker", requestId);
  try {
    const resp = await fetch("/v1/generate", { method: "POST", body: form });
    const secs = stop();
    if (!resp.ok) { setStatus(`Error: ${await errorText(resp)}`, { error: true }); return; }
    const blob = await resp.blob();
    useFile(new File([blob], "generated.png", { type: "image/png" }));
    setStatus(`Sticker generated in ${secs.toFixed(1)} s; now animate it.`);
  } catch (e) {
    stop();
    setStatus(`Error: could not reach the server (${e.message})`, { error: true });
  } finally {
    state.busy = false; updateButtons();
  }
}

async function loadInfo() {
  try {
    const r = await fetch("/v1/info");
    const info = await r.json();
    state.info = info;
    const d = info.defaults;
    $("image-guidance").value = d.image_guidance; $("text-guidance").value = d.text_guidance;
    $("steps").value = d.steps; $("steps").max = info.limits.max_steps; $("seed").value = d.seed;
    $("prompt").maxLength = info.limits.max_prompt_chars;
    syncOutputs();
    const m = info.model;
    $("model-line").textContent = `Model ${m.name || "?"} · ${m.resolution || "?"} px · ${m.num_frames || 8} frames`;
    for (const [name, summary] of Object.entries(info.presets || {})) {
      const opt = document.createElement("option");
      opt.value = name; opt.textContent = name; opt.title = summary;
      $("preset-select").append(opt);
    }
    if (!info.generate) {
      $("gen-prompt").disabled = true;
      $("t2i-note").hidden = false;
    }
  } catch (e) {
    $("model-line").textContent = "Could not load model info.";
  }
  updateButtons();
}

function syncOutputs() {
  $("ig-out").textContent = $("image-guidance").value;
  $("tg-out").textContent = $("text-guidance").value;
}

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => useFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    useFile(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
  $("prompt").addEventListener("input", updateButtons);
  $("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter") animate(); });
  $("gen-prompt").addEventListener("input", updateButtons);
  $("image-guidance").addEventListener("input", syncOutputs);
  $("text-guidance").addEventListener("input", syncOutputs);
  $("animate-btn").addEventListener("click", animate);
  $("gen-btn").addEventListener("click", generate);
  $("preset-select").addEventListener("change", updatePresetLink);
  loadInfo();
}

document.addEventListener("DOMContentLoaded", init);
