// Standalone evaluation (paper 4.1): one sticker, 10 motion + 4 prompt questions, "yes" or failure reasons.
"use strict";

const jobId = jobIdFromPath();
let questions = [];
let assignment = null;

function buildForm() {
  for (const q of questions) {
    const box = el("div", { class: "choices" });
    box.append(el("label", { class: "yes" },
      el("input", { type: "checkbox", name: q.key, value: "yes", "data-yes": "1" }), "Yes"));
    for (const r of q.reasons) {
      box.append(el("label", {}, el("input", { type: "checkbox", name: q.key, value: r.key }), r.label));
    }
    const fs = el("fieldset", { "data-q": q.key, id: `q-${q.key}` },
      el("legend", { text: q.title }), el("div", { text: q.text }), box);
    document.getElementById(q.task === "motion" ? "motion" : "prompt-questions").append(fs);
  }
  document.getElementById("form").addEventListener("change", onChange);
  document.getElementById("comment").addEventListener("input", saveDraft);
  document.getElementById("form").addEventListener("submit", onSubmit);
}

// "Yes" and failure reasons exclude each other within a question.
function onChange(ev) {
  const box = ev.target;
  if (box.type === "checkbox" && box.checked) {
    const others = document.querySelectorAll(`input[name="${box.name}"]`);
    for (const o of others) {
      if (o !== box && (box.dataset.yes || o.dataset.yes)) o.checked = false;
    }
  }
  saveDraft();
  updateState();
}

function collect() {
  const answers = {};
  for (const q of questions) {
    const ticked = [...document.querySelectorAll(`input[name="${q.key}"]:checked`)].map((i) => i.value);
    if (ticked.includes("yes")) answers[q.key] = "yes";
    else if (ticked.length) answers[q.key] = ticked;
  }
  return answers;
}

function updateState() {
  const answers = collect();
  const missing = questions.filter((q) => !(q.key in answers));
  for (const q of questions) document.getElementById(`q-${q.key}`).classList.toggle("missing", !(q.key in answers));
  document.getElementById("submit").disabled = missing.length > 0;
  document.getElementById("missing").textContent = missing.length ? `${missing.length} question(s) left` : "";
}

function saveDraft() {
  if (assignment) drafts.save(assignment.assignment_id, { answers: collect(), comment: document.getElementById("comment").value });
}

function restore(draft) {
  for (const input of document.querySelectorAll("#form input[type=checkbox]")) input.checked = false;
  document.getElementById("comment").value = draft ? draft.comment || "" : "";
  if (!draft) return;
  for (const [key, value] of Object.entries(draft.answers || {})) {
    const values = value === "yes" ? ["yes"] : value;
    for (const v of values) {
      const input = document.querySelector(`input[name="${key}"][value="${v}"]`);
      if (input) input.checked = true;
    }
  }
}

async function loadNext() {
  assignment = await nextAssignment(jobId);
  if (!assignment) return;
  const stage = document.getElementById("sticker");
  stage.replaceChildren(mediaElement(assignment.candidates[0]));
  document.getElementById("prompt").textContent = assignment.prompt;
  restore(drafts.load(assignment.assignment_id));
  updateState();
  document.getElementById("work").hidden = false;
  document.getElementById("done").hidden = true;
  window.scrollTo(0, 0);
}

async function onSubmit(ev) {
  ev.preventDefault();
  const button = document.getElementById("submit");
  button.disabled = true;
  const id = assignment.assignment_id;
  const comment = document.getElementById("comment").value.trim();
  try {
    await api(`/api/assignments/${id}`, { body: { answers: collect(), comment: comment || null } });
    drafts.clear(id);
    await loadNext();
  } catch (e) {
    document.getElementById("error").textContent = e.message;
    if (e.status === 409 || e.status === 404) { drafts.clear(id); await loadNext(); }
    else updateState();
  }
}

(async () => {
  await requireLogin();
  questions = await api("/api/questions");
  buildForm();
  await loadNext();
})().catch((e) => { document.getElementById("error").textContent = e.message; document.getElementById("work").hidden = false; });
