"""`stickers hitl report`: hitl-round-N.md, what one round of the loop made and what it bought.

Every model (each teacher and the student) animates the same held-out prompt set (`stickers hitl prompts
--split heldout`: held-out stills, prompts in the three buckets, seed per prompt) and is judged by the
`stickers eval auto` code (eval/auto.py judge_folder + summarise): the all-nine pass rate, prompt-motion
relevance and the detail ratio. Results are cached per model under WORK/<model>/ (resumable).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

from ..atomic import atomic_write_text
from ..prompts_file import PROMPTS_FILE
from .candidates import LOG_DIR, make_candidates, read_manifest, teacher_of
from .inputs import read_entries
from .teachers import TEACHERS

MIN_GAIN = 0.05  # the bar: the student beats its best teacher by this much on the all-nine rate


def evaluate_model(name: str, model: Path, eval_prompts: Path, work: Path, progress: bool = True) -> dict:
    """{all_nine, relevance, relevance_n, chance, detail_median, n} of one model on the held-out prompt set."""
    from ..eval.auto import judge_folder, summarise
    from ..eval.report import write_results
    from ..eval.thresholds import load_thresholds

    cached = work / name / "eval" / "summary.json"
    if not cached.is_file():
        make_candidates(eval_prompts, {name: model}, work / name, per_prompt=1, seed=0, progress=progress)
        th = load_thresholds()
        results = judge_folder(eval_prompts, work / name / f"{name}@0", th)
        write_results(work / name / "eval", [r.to_json() for r in results], summarise(results, th))
    s = json.loads(cached.read_text(encoding="utf-8"))
    rel = s.get("relevance", {})
    nine = s.get("all_nine", s["all_criteria"])  # the bar is on the nine (summaries before blobs: all)
    return {"n": s["n"], "all_nine": nine["pass_rate"], "relevance": rel.get("agreement"),
            "relevance_n": rel.get("n", 0), "chance": rel.get("chance"),
            "detail_median": (s.get("detail_ratio") or {}).get("median")}


def candidate_seconds(candidates: Path) -> dict:
    """Seconds per candidate from the generation logs: {n, mean, median} (None when no log)."""
    secs = []
    for f in sorted((candidates / LOG_DIR).glob("rank-*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                secs.append(float(json.loads(line)["seconds"]))
            except (ValueError, KeyError):
                continue
    return {"n": len(secs), "mean": statistics.fmean(secs) if secs else None,
            "median": statistics.median(secs) if secs else None}


def _f(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def verdict(evals: dict[str, dict], student: str | None) -> list[str]:
    """Lines saying whether the student beats its best teacher by MIN_GAIN without losing relevance."""
    teachers = {k: v for k, v in evals.items() if k != student}
    if student is None or student not in evals or not teachers:
        return ["No student evaluated yet: run `stickers hitl finetune`, then this report again."]
    best = max(teachers, key=lambda k: teachers[k]["all_nine"])
    s, b = evals[student], teachers[best]
    gain = s["all_nine"] - b["all_nine"]
    rel_ok = s["relevance"] is None or b["relevance"] is None or s["relevance"] >= b["relevance"]
    ok = gain >= MIN_GAIN and rel_ok
    lines = [f"Best teacher: `{best}` (all-nine {_f(b['all_nine'])}). Student: {_f(s['all_nine'])} "
             f"({gain:+.3f}); relevance {_f(s['relevance'])} vs {_f(b['relevance'])}.", ""]
    if ok:
        lines.append(f"**The student beats its best teacher by at least {MIN_GAIN}** without losing relevance.")
    else:
        why = [] if gain >= MIN_GAIN else [f"the all-nine gain is {gain:+.3f} < {MIN_GAIN}"]
        why += [] if rel_ok else ["relevance dropped"]
        lines.append(f"**The student does not meet the bar**: {'; '.join(why)}. The notes (`--notes FILE`) say "
                     "why and what the next round changes.")
    return lines


def render(round_no: int, prompts: list[dict], manifest: dict, selection: dict, evals: dict[str, dict],
           student: str | None, cost: dict, notes: str = "") -> str:
    """The round's Markdown report."""
    buckets = Counter(e.get("bucket", "?") for e in prompts)
    per_teacher = Counter(teacher_of(j["folder"]) for j in manifest["jobs"] if j["done"])
    out = [f"# HITL round {round_no} (paper 2.3: ensemble of teachers -> selection -> student)", "",
           "## Prompts", "", f"{len(prompts)} prompts, each paired with a still sticker "
           f"({Counter(e.get('split', '?') for e in prompts).most_common()} by split).", "",
           "| Bucket | Prompts | Kept candidates |", "|---|---:|---:|"]
    for b in sorted(buckets):
        out.append(f"| {b} | {buckets[b]} | {selection['kept_per_bucket'].get(b, 0)} |")
    out += ["", "## Candidates and selection", "",
            f"{manifest['done']} of {manifest['candidates']} candidates made ({manifest['per_prompt']} per prompt, "
            f"teachers {', '.join(manifest['teachers'])}); seconds per candidate: mean {_f(cost['mean'], 2)}, "
            f"median {_f(cost['median'], 2)} over {cost['n']} logged.", "",
            f"Job `{selection['job']}`: {selection['complete_items']} of {selection['items']} items fully "
            f"annotated; kept = chosen by >= {selection['min_votes']} annotators: **{selection['kept_count']}**.", "",
            "| Teacher | Candidates | Kept | Kept share |", "|---|---:|---:|---:|"]
    for t in sorted(per_teacher):
        k = selection["kept_per_teacher"].get(t, 0)
        knob = TEACHERS.get(t)
        recipe = "" if knob is None else f" (recipe: {knob or 'base'})"
        out.append(f"| {t}{recipe} | {per_teacher[t]} | {k} | {_f(k / per_teacher[t] if per_teacher[t] else None)} |")
    a = selection["agreement"]
    out += ["", f"Agreement between raters over {a['n']} candidates ({a['raters']} raters each): pairwise "
            f"{_f(a['pairwise'])}, Fleiss' kappa {_f(a['fleiss_kappa'])}; chosen share per rater: "
            + ", ".join(f"{k} {_f(v)}" for k, v in selection["chosen_share_per_rater"].items()) + ".", "",
            "## Held-out evaluation", "", "| Model | n | All-nine pass rate | Relevance (chance) | Detail ratio |",
            "|---|---:|---:|---:|---:|"]
    for name, e in evals.items():
        label = f"{name} (student)" if name == student and name != "student" else name
        out.append(f"| {label} | {e['n']} | {_f(e['all_nine'])} | {_f(e['relevance'])} ({_f(e['chance'])}, "
                   f"n={e['relevance_n']}) | {_f(e['detail_median'])} |")
    out += ["", *verdict(evals, student)]
    if notes:
        out += ["", "## Notes", "", notes.strip()]
    return "\n".join(out).rstrip() + "\n"


def write_report(path: Path, round_no: int, candidates: Path, selection: dict, evals: dict[str, dict],
                 student: str | None, notes: str = "") -> Path:
    """Write hitl-round-N.md atomically."""
    manifest = read_manifest(candidates)
    prompts = read_entries(candidates / PROMPTS_FILE)
    text = render(round_no, prompts, manifest, selection, evals, student, candidate_seconds(candidates), notes)
    return atomic_write_text(path, text)
