"""Consensus and pass-rate tables in the paper's format (Table 1: per model; Table 2: two models side by side).

Paper 4.1: "Consensus count refers to samples where all three annotators agreed on the label, and pass
rate is the percentage of samples with consensus where the animated stickers passed the criteria."
Here an item counts towards a criterion's consensus only once it has at least `required` answers (the
job's annotators per item, 3 by default) and all of them agree; items with fewer answers are reported
as incomplete and left out of both numbers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from ...errors import UserError
from .questions import MOTION, MOTION_QUESTIONS, PROMPT_QUESTIONS, QUESTIONS
from .store import Store


@dataclass
class CriterionStats:
    """One row of Table 1."""

    key: str
    title: str
    task: str
    consensus: int  # items where all (>= required) annotators agree
    passed: int  # of those, items where they agree on "yes"
    complete: int  # items with >= required answers
    incomplete: int  # items with 1 .. required-1 answers (not counted)
    reasons: dict[str, int]  # failure reasons ticked, over all answers

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.consensus if self.consensus else None

    def as_json(self) -> dict:
        return {**asdict(self), "pass_rate": self.pass_rate}


def consensus(votes: Mapping[Hashable, Sequence[bool]], required: int | Mapping[Hashable, int] = 3
              ) -> tuple[int, int, int, int]:
    """(consensus count, consensus passes, complete items, incomplete items) from per-item pass/fail votes."""
    n_consensus = n_pass = complete = incomplete = 0
    for item, v in votes.items():
        need = required[item] if isinstance(required, Mapping) else required
        if len(v) < need:
            incomplete += bool(v)
            continue
        complete += 1
        if all(v) or not any(v):
            n_consensus += 1
            n_pass += bool(v[0])
    return n_consensus, n_pass, complete, incomplete


def criterion_table(rows: Iterable[Mapping]) -> list[CriterionStats]:
    """Table 1 rows, in question order, from answer rows {item, question, passed, required[, reasons]}."""
    votes: dict[str, dict[Hashable, list[bool]]] = defaultdict(lambda: defaultdict(list))
    required: dict[Hashable, int] = {}
    reasons: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        votes[r["question"]][r["item"]].append(bool(r["passed"]))
        required[r["item"]] = int(r.get("required", 3))
        reasons[r["question"]].update(r.get("reasons") or [])
    table = []
    for q in QUESTIONS:
        c, p, complete, incomplete = consensus(votes.get(q.key, {}), required)
        table.append(CriterionStats(q.key, q.title, q.task, c, p, complete, incomplete,
                                    dict(reasons[q.key].most_common())))
    return table


def build_report(store: Store, job: str | None = None, compare: tuple[str, str] | None = None) -> dict:
    """The report as JSON-ready data: per model Table 1 rows; with `compare`, the Table 2 pair."""
    if job is not None:
        store.job_by_name(job)
    items = store.eval_items(job)
    votes = store.eval_votes(job)
    by_model: dict[str, list[dict]] = defaultdict(list)
    for v in votes:
        by_model[v["model"]].append(v)
    item_counts = Counter(i["model"] for i in items)
    models = {}
    for model in sorted(item_counts):
        raters: dict[int, set[str]] = defaultdict(set)
        required: dict[int, int] = {}
        for v in by_model[model]:
            raters[v["item"]].add(v["annotator"])
            required[v["item"]] = v["required"]
        full = sum(len(r) >= required[i] for i, r in raters.items())
        models[model] = {"items": item_counts[model], "annotated_items": len(raters), "fully_annotated": full,
                         "annotators": len({v["annotator"] for v in by_model[model]}),
                         "criteria": [s.as_json() for s in criterion_table(by_model[model])]}
    report = {"job": job, "models": models}
    if compare is not None:
        missing = [m for m in compare if m not in models]
        if missing:
            raise UserError(f"--compare {missing[0]}: no evaluated model of that name"
                            f"{' in job ' + repr(job) if job else ''}; known: {', '.join(models) or 'none'}")
        report["compare"] = list(compare)
    return report


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def table1_markdown(criteria: Sequence[Mapping], task: str = MOTION) -> str:
    """Paper Table 1: Category | Consensus count | Pass rate, for one task's questions."""
    lines = ["| Category | Consensus count | Pass rate |", "|---|---:|---:|"]
    lines += [f"| {c['title']} | {c['consensus']} | {_rate(c['pass_rate'])} |" for c in criteria if c["task"] == task]
    return "\n".join(lines)


def table2_markdown(a: Sequence[Mapping], b: Sequence[Mapping], name_a: str, name_b: str, task: str = MOTION) -> str:
    """Paper Table 2: Category | A pass rate | B pass rate (consensus counts in parentheses)."""
    lines = [f"| Category | {name_a} pass rate | {name_b} pass rate |", "|---|---:|---:|"]
    for ca, cb in zip(a, b):
        if ca["task"] == task:
            lines.append(f"| {ca['title']} | {_rate(ca['pass_rate'])} (n={ca['consensus']}) "
                         f"| {_rate(cb['pass_rate'])} (n={cb['consensus']}) |")
    return "\n".join(lines)


def render_markdown(report: Mapping) -> str:
    """Markdown for a report from build_report."""
    scope = f"job `{report['job']}`" if report["job"] else "all evaluation jobs"
    out = [f"# Human evaluation ({scope})", ""]
    tasks = ((MOTION, "Motion quality", len(MOTION_QUESTIONS)), ("prompt", "Prompt similarity", len(PROMPT_QUESTIONS)))
    if not report["models"]:
        out.append("No evaluation items yet.")
    if "compare" in report:
        a, b = report["compare"]
        ma, mb = report["models"][a], report["models"][b]
        out += [f"## `{a}` vs `{b}`", "",
                (f"`{a}`: {ma['items']} stickers, {ma['annotated_items']} annotated; "
                 f"`{b}`: {mb['items']} stickers, {mb['annotated_items']} annotated. "
                 "Pass rate among consensus samples; n = consensus count."), ""]
        for task, title, _ in tasks:
            out += [f"### {title}", "", table2_markdown(ma["criteria"], mb["criteria"], a, b, task), ""]
        return "\n".join(out).rstrip() + "\n"
    for model, m in report["models"].items():
        out += [f"## Model `{model}`", "",
                (f"{m['items']} stickers, {m['annotated_items']} with at least one answer, "
                 f"{m['fully_annotated']} fully annotated; {m['annotators']} annotators."), ""]
        for task, title, _ in tasks:
            out += [f"### {title}", "", table1_markdown(m["criteria"], task), ""]
    return "\n".join(out).rstrip() + "\n"


def hitl_summary(store: Store, job: str, min_votes: int = 2) -> dict:
    """HITL votes per candidate and the candidates kept (chosen by >= min_votes annotators; paper: 2 of 3)."""
    rows = store.hitl_votes(job)
    kept = [r for r in rows if r["votes"] >= min_votes]
    complete = {r["item"] for r in rows if r["answers"] >= r["required"]}
    return {"job": job, "min_votes": min_votes, "items": len({r["item"] for r in rows}),
            "complete_items": len(complete), "candidates": rows, "kept": kept,
            "kept_per_model": dict(Counter(r["model"] for r in kept))}
