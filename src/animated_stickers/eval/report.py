"""Write evaluation results: per-sticker JSONL, summary JSON and Markdown tables (each file atomically)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..atomic import atomic_write_text
from .measures import CRITERIA


def _clean(x):
    """JSON-safe: NaN/inf become None (strict JSON has neither)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def dumps(obj) -> str:
    """Strict JSON text (no NaN), indented."""
    return json.dumps(_clean(obj), indent=2, allow_nan=False)


def write_results(out_dir: Path, records: list[dict], summary: dict) -> dict[str, Path]:
    """per_sticker.jsonl + summary.json + summary.md in `out_dir`."""
    lines = "".join(json.dumps(_clean(r), allow_nan=False) + "\n" for r in records)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "jsonl": atomic_write_text(out_dir / "per_sticker.jsonl", lines),
        "json": atomic_write_text(out_dir / "summary.json", dumps(summary) + "\n"),
        "md": atomic_write_text(out_dir / "summary.md", summary_markdown(summary)),
    }


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def summary_markdown(summary: dict) -> str:
    """The pass-rate table (the paper's Table 1 layout, automatic judges instead of people)."""
    rows = [
        "# Automatic evaluation",
        "",
        (
            f"Stickers: {summary['n']} (unreadable or missing outputs: {summary['n_failed_to_read']}, "
            "counted as failures on every criterion)."
        ),
        "",
        "| Criterion | Passed | Pass rate | Pass if raw | Median raw |",
        "|---|---:|---:|---|---:|",
    ]
    for name, c in summary["criteria"].items():
        rows.append(
            f"| {name} | {c['passed']}/{c['n']} | {c['pass_rate']:.3f} | "
            f"{c['pass_if']} {_fmt(c['threshold'])} | {_fmt(c['median_value'])} |"
        )
    a = summary["all_criteria"]
    rows.append(f"| **all criteria** | {a['passed']}/{a['n']} | {a['pass_rate']:.3f} | | |")
    if "all_nine" in summary:  # the nine judged before `blobs`: comparable with earlier runs
        a9 = summary["all_nine"]
        rows.append(f"| all nine (without blobs) | {a9['passed']}/{a9['n']} | {a9['pass_rate']:.3f} | | |")
    d = summary.get("detail_ratio") or {}
    if d.get("n"):  # eval/detail.py: fine detail kept vs the input (real clips: 1.0-1.18)
        rows += ["", f"Detail ratio (output vs input): median {_fmt(d['median'])}, q10 {_fmt(d['q10'])}, "
                 f"q90 {_fmt(d['q90'])} over {d['n']} stickers."]
    mv = summary.get("motion_vs_real")
    if mv:  # motionref.py: the result's motion against the artist's own clip of the sticker
        rows += ["", f"## Motion against the artist's clip ({mv['all_motion']['n']} stickers with one)", "",
                 "| Criterion | Passed | Pass rate | Passes inside | Median raw |", "|---|---:|---:|---|---:|"]
        for name in ("motion_size", "motion_where", "motion_parts"):
            c = mv[name]
            low, high = c["threshold"]
            band = f">= {_fmt(low)}" + ("" if high is None else f" and <= {_fmt(high)}")
            rows.append(f"| {name} | {c['passed']}/{c['n']} | {c['pass_rate']:.3f} | {band} | "
                        f"{_fmt(c['median_value'])} |")
        a = mv["all_motion"]
        rows.append(f"| **all three + existence** | {a['passed']}/{a['n']} | {a['pass_rate']:.3f} | | |")
    ma = summary.get("motion_alone") or {}
    if ma.get("n"):  # motion with no reference clip, beside the artist clips' own figures
        rows += ["", f"Motion alone: median size {_fmt(ma['size_median'])} of the alpha box diagonal (artist clips: "
                 f"{_fmt(ma['artist_size_median'])}), parts share {_fmt(ma['parts_median'])} (artist clips: "
                 f"{_fmt(ma['artist_parts_median'])}); hardly moving (below {_fmt(ma['hardly_moves_below'])}): "
                 f"{_fmt(ma['hardly_moves'])} of {ma['n']} stickers."]
    rel = summary.get("relevance") or {}
    if rel.get("n"):  # eval/relevance.py: measured dominant motion vs the motion label of the prompt
        rows += ["", f"Motion-label agreement: {rel['agreement']:.3f} over {rel['n']} prompts labelled with a motion "
                 f"(chance {rel['chance']:.3f}); per word: " + ", ".join(
                     f"{w} {r['agree']}/{r['n']}" for w, r in sorted(rel["per_word"].items())) + "."]
    vs = summary.get("vs_real")
    if vs and vs.get("n"):
        rows += [
            "",
            f"## Generated vs real motion ({vs['n']} stickers with a real clip)",
            "",
            "| Statistic | Generated | Real |",
            "|---|---:|---:|",
        ]
        for key in ("mean", "q10", "median", "q90"):
            gen, real = _fmt(vs["motion_generated"][key]), _fmt(vs["motion_real"][key])
            rows.append(f"| motion score {key} | {gen} | {real} |")
        rows += [
            "",
            (
                f"- KS statistic of motion scores: {_fmt(vs['motion_ks'], 3)}; Wasserstein-1: "
                f"{_fmt(vs['motion_wasserstein1'], 3)}; median generated/real motion ratio: "
                f"{_fmt(vs['motion_ratio_median'], 3)}"
            ),
            (
                "- Middle (conditioning) frame vs real: median PSNR "
                f"{_fmt(vs['middle_psnr']['median'], 4)} dB, "
                f"median MAE {_fmt(vs['middle_mae']['median'], 3)}; all frames median PSNR "
                f"{_fmt(vs['all_frames_psnr']['median'], 4)} dB"
            ),
        ]
    return "\n".join(rows) + "\n"


def calibration_markdown(
    rates: dict,
    thresholds: dict,
    accuracy: dict,
    quantiles: dict,
    kinds: tuple,
    targets: dict,
    positives: dict,
    meta: dict,
) -> str:
    """Calibration: pass rate of each kind (real and broken) per criterion, and the chosen thresholds."""
    head = [
        "# Calibration of the automatic measures",
        "",
        (
            f"{meta['n_clips']} Fluent animations ({meta['split']} split), {meta['frames']} frames at "
            f"{meta['fps']} fps, {meta['size']} px, conditioning frame {meta['cond']}. "
            "Cells: share of clips passing. **Bold**: a broken kind that targets the criterion (should be "
            "low); _italic_: the real kinds a threshold was fitted on (should be high)."
        ),
        "",
        "| Criterion | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]
    for c in CRITERIA:
        cells = []
        for k in kinds:
            v = rates[c.name][k]
            s = "-" if not math.isfinite(v) else f"{v:.2f}"
            if c.name in targets.get(k, ()):
                s = f"**{s}**"
            elif k in positives[c.name]:
                s = f"_{s}_"
            cells.append(s)
        head.append(f"| {c.name} | " + " | ".join(cells) + " |")
    head += [
        "",
        "## Thresholds",
        "",
        (
            "| Criterion | Pass if raw | Balanced accuracy | Real raw q05 / median / q95 | "
            "Targeted broken raw q05 / median / q95 |"
        ),
        "|---|---|---:|---|---|",
    ]

    def fq(q: dict) -> str:
        return " / ".join(_fmt(q.get(k)) for k in ("q05", "median", "q95")) if q else "-"

    for c in CRITERIA:
        th = thresholds[c.name]
        qp, qn = quantiles[c.name]["positive"], quantiles[c.name]["negative"]
        head.append(
            f"| {c.name} | {'>=' if th.higher_is_better else '<='} {_fmt(th.threshold)} | "
            f"{accuracy[c.name]:.3f} | {fq(qp)} | {fq(qn)} |"
        )
    return "\n".join(head) + "\n"
