// Shared helpers: JSON fetch with one-line errors, progress bars, media elements.
"use strict";

async function api(path, options = {}) {
  const opts = { credentials: "same-origin", ...options };
  if (opts.body !== undefined) {
    opts.method = opts.method || "POST";
    opts.headers = { "Content-Type": "application/json", ...(opts.headers || {}) };
    opts.body = JSON.stringify(opts.body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new Error("cannot reach the server; your answers are kept in this page, try again");
  }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(data.detail || `request failed (${resp.status})`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// An element that loops the animation: <img> for animated images, <video loop> for video files.
function mediaElement(candidate) {
  if (candidate.media_type.startsWith("video/")) {
    const v = el("video", { src: candidate.url, autoplay: "", loop: "", muted: "", playsinline: "" });
    v.muted = true;
    return v;
  }
  return el("img", { src: candidate.url, alt: "animated sticker" });
}

function showProgress(p) {
  const bar = document.getElementById("progress-bar");
  const text = document.getElementById("progress-text");
  const total = Math.max(p.total, 1);
  bar.style.width = `${(100 * p.done) / total}%`;
  text.textContent = `${p.done} of ${p.total} done · job ${p.job_done}/${p.job_total} answers`;
}

function jobIdFromPath() {
  return Number(location.pathname.split("/").filter(Boolean).pop());
}

async function requireLogin() {
  try {
    return await api("/api/me");
  } catch (e) {
    if (e.status === 401) location.href = "/";
    throw e;
  }
}

// Drafts survive a reload or a dead server: kept in localStorage until the submission succeeds.
const drafts = {
  key: (id) => `stickers-eval-draft-${id}`,
  load(id) { try { return JSON.parse(localStorage.getItem(this.key(id))) || null; } catch { return null; } },
  save(id, value) { try { localStorage.setItem(this.key(id), JSON.stringify(value)); } catch { /* full */ } },
  clear(id) { try { localStorage.removeItem(this.key(id)); } catch { /* ignore */ } },
};

// The annotator's next assignment of a job (null when none is left): fills the page header and the
// progress bar, and shows the "All done" card when the job has nothing left for this annotator.
async function nextAssignment(jobId) {
  const data = await api(`/api/jobs/${jobId}/next`);
  document.getElementById("job-name").textContent = data.job.name;
  document.getElementById("who").textContent = data.annotator;
  showProgress(data.progress);
  document.getElementById("error").textContent = "";
  if (!data.assignment) {
    document.getElementById("work").hidden = true;
    document.getElementById("done").hidden = false;
  }
  return data.assignment;
}
