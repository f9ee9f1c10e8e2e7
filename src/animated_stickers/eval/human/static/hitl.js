// HITL filtering (paper 2.3, Figure 4): select any number of the candidates, or "I wouldn't share any of these".
"use strict";

const jobId = jobIdFromPath();
let assignment = null;
const selected = new Set();

function render() {
  for (const card of document.querySelectorAll(".cand")) {
    card.classList.toggle("selected", selected.has(Number(card.dataset.id)));
    card.querySelector("input").checked = selected.has(Number(card.dataset.id));
  }
  const none = document.getElementById("none").checked;
  document.getElementById("submit").disabled = !(none || selected.size);
  if (assignment) drafts.save(assignment.assignment_id, { selected: [...selected], none });
}

function toggle(id) {
  if (selected.has(id)) selected.delete(id); else selected.add(id);
  if (selected.size) document.getElementById("none").checked = false;
  render();
}

async function loadNext() {
  assignment = await nextAssignment(jobId);
  if (!assignment) return;
  document.getElementById("prompt").textContent = assignment.prompt;
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  selected.clear();
  assignment.candidates.forEach((c, i) => {
    const card = el("div", { class: "cand", "data-id": String(c.id), onclick: (ev) => { ev.preventDefault(); toggle(c.id); } },
      el("div", { class: "checker" }, mediaElement(c)),
      el("div", { class: "label" }, el("input", { type: "checkbox", tabindex: "-1" }), ` ${String.fromCharCode(65 + i)}`));
    grid.append(card);
  });
  const draft = drafts.load(assignment.assignment_id);
  for (const id of (draft && draft.selected) || []) selected.add(id);
  document.getElementById("none").checked = Boolean(draft && draft.none);
  document.getElementById("comment").value = "";
  render();
  document.getElementById("work").hidden = false;
  document.getElementById("done").hidden = true;
}

document.getElementById("none").addEventListener("change", (ev) => {
  if (ev.target.checked) selected.clear();
  render();
});

document.getElementById("submit").addEventListener("click", async () => {
  const button = document.getElementById("submit");
  button.disabled = true;
  const id = assignment.assignment_id;
  const none = document.getElementById("none").checked;
  const comment = document.getElementById("comment").value.trim() || null;
  try {
    await api(`/api/assignments/${id}`, { body: none ? { none: true, comment } : { selected: [...selected], comment } });
    drafts.clear(id);
    await loadNext();
  } catch (e) {
    document.getElementById("error").textContent = e.message;
    if (e.status === 409 || e.status === 404) { drafts.clear(id); await loadNext(); } else render();
  }
});

(async () => {
  await requireLogin();
  await loadNext();
})().catch((e) => { document.getElementById("error").textContent = e.message; document.getElementById("work").hidden = false; });
