"""Calibrate the automatic measures: real held-out Fluent clips should pass, broken versions should fail.

For every held-out animation we measure the real 8-frame clip (8 fps, middle frame as the input), a
whole-loop version (8 frames spread over the seamless animation: the reference for looping), a lossy
WebP round trip (compression must not fail a clip), and each deliberately broken version (broken.py).
Each threshold maximises balanced accuracy between the real clips (whole-loop clips for looping) and
the broken kinds that target that criterion, placed midway in the best gap.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .broken import BREAKERS, OUTLINED, TARGETS, add_white_outline
from .measures import CRITERIA, make_clip, measure_all
from .realclips import RealClip, load_real_clips
from .thresholds import Threshold

REAL_KINDS = ("real", "real_lossy", "real_loop", "real_outlined")
BROKEN_KINDS = tuple(BREAKERS) + ("wrong_input",)
KINDS = REAL_KINDS + BROKEN_KINDS
# The real kinds each criterion's threshold is fitted on: 8-fps excerpts of a 3 s loop are not loops,
# and Fluent emoji rarely have an outline, so the outline criterion also sees white-outlined clips.
POSITIVE_KINDS = {c.name: ("real", "real_lossy") for c in CRITERIA} | {
    "looping": ("real_loop",),
    "outline": ("real", "real_lossy", "real_outlined"),
}


@dataclass
class CalibrationData:
    """Raw values: values[kind][criterion] -> list (None where a measure was undefined)."""

    stems: list[str] = field(default_factory=list)
    values: dict[str, dict[str, list]] = field(
        default_factory=lambda: {k: {c.name: [] for c in CRITERIA} for k in KINDS}
    )

    def add(self, kind: str, measured: dict) -> None:
        for name, m in measured.items():
            self.values[kind][name].append(m.value)


def lossy_roundtrip(frames: np.ndarray, quality: int = 75) -> np.ndarray:
    """Each frame through lossy WebP (alpha kept exactly, as messengers ship it)."""
    out = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="WEBP", quality=quality, alpha_quality=100)
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("RGBA")))
    return np.stack(out)


def _seed(stem: str) -> int:
    return int.from_bytes(stem.encode()[:8].ljust(8, b"\0"), "little") % (2**32)


def measure_variants(rc: RealClip, other: RealClip | None) -> dict[str, dict]:
    """Every calibration kind for one real clip -> {kind: {criterion: Measured}}."""
    image = rc.image
    base = rc.clip.astype(np.float32) / 255.0
    outlined = add_white_outline(base)
    out = {
        "real": measure_all(make_clip(rc.clip, image, rc.cond)),
        "real_lossy": measure_all(make_clip(lossy_roundtrip(rc.clip), image, rc.cond)),
        "real_loop": measure_all(make_clip(rc.loop, image, rc.cond)),
        "real_outlined": measure_all(make_clip(outlined, outlined[rc.cond], rc.cond)),
    }
    for kind, breaker in BREAKERS.items():
        broken = breaker(base, rc.cond, np.random.default_rng(_seed(rc.stem + kind)))
        ref = outlined[rc.cond] if kind in OUTLINED else image
        out[kind] = measure_all(make_clip(broken, ref, rc.cond))
    if other is not None:
        out["wrong_input"] = measure_all(make_clip(other.clip, image, rc.cond))
    return out


def collect(
    files: list[Path],
    size: int = 128,
    limit: int | None = None,
    progress: Callable[[Iterable], Iterable] = iter,
) -> CalibrationData:
    """Measure real and broken versions of every animated file (stills skipped) up to `limit` clips."""
    data = CalibrationData()
    clips = load_real_clips(files, limit, size, progress)
    for i, rc in enumerate(progress(clips)):
        other = clips[(i + len(clips) // 2) % len(clips)] if len(clips) > 1 else None
        for kind, measured in measure_variants(rc, other).items():
            data.add(kind, measured)
        data.stems.append(rc.stem)
    return data


def _balanced_accuracy(pos: np.ndarray, neg: np.ndarray, thr: float, higher: bool) -> float:
    tp = np.mean(pos >= thr) if higher else np.mean(pos <= thr)
    tn = np.mean(neg < thr) if higher else np.mean(neg > thr)
    return 0.5 * (tp + tn)


def choose_threshold(pos: list, neg: list, higher_is_better: bool) -> tuple[float, float]:
    """(threshold, balanced accuracy): the best split between positives (pass) and negatives (fail),
    midway between the neighbouring observed values; ties go to the threshold passing more positives."""
    p = np.array([v for v in pos if v is not None and not math.isnan(v)], float)
    n = np.array([v for v in neg if v is not None and not math.isnan(v)], float)
    if p.size == 0:
        raise ValueError("no real values to calibrate on")
    if n.size == 0:
        return (float(p.min()) if higher_is_better else float(p.max())), 1.0
    cands = np.unique(np.concatenate([p, n]))
    mids = np.concatenate([[cands[0] - 1e-9], (cands[:-1] + cands[1:]) / 2, [cands[-1] + 1e-9]])
    scores = np.array([_balanced_accuracy(p, n, t, higher_is_better) for t in mids])
    best = scores >= scores.max() - 1e-12
    # The best splits form runs of neighbouring candidates; take the run most lenient to real clips
    # (lowest bar when higher is better, highest otherwise) and sit in its middle.
    idx = np.flatnonzero(best)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    run = runs[0] if higher_is_better else runs[-1]
    return float((mids[run[0]] + mids[run[-1]]) / 2), float(scores[run[0]])


def fit_thresholds(data: CalibrationData, source: str) -> tuple[dict[str, Threshold], dict[str, float]]:
    """A threshold per criterion from the calibration data, and its balanced accuracy."""
    out, acc = {}, {}
    for c in CRITERIA:
        neg = [v for kind, targets in TARGETS.items() if c.name in targets for v in data.values[kind][c.name]]
        pos = [v for kind in POSITIVE_KINDS[c.name] for v in data.values[kind][c.name]]
        thr, ba = choose_threshold(pos, neg, c.higher_is_better)
        out[c.name] = Threshold(_round(thr), c.higher_is_better, source)
        acc[c.name] = ba
    return out, acc


def _round(x: float) -> float:
    """Four significant digits: thresholds are read by people."""
    return float(f"{x:.4g}")


def pass_rates(data: CalibrationData, thresholds: dict[str, Threshold]) -> dict[str, dict[str, float]]:
    """rates[criterion][kind]: share of clips of that kind passing (undefined values fail)."""
    rates: dict[str, dict[str, float]] = {}
    for c in CRITERIA:
        th = thresholds[c.name]
        rates[c.name] = {}
        for kind in KINDS:
            vals = data.values[kind][c.name]
            rates[c.name][kind] = float(np.mean([th.passes(v) for v in vals])) if vals else float("nan")
    return rates


def value_quantiles(values: list) -> dict:
    """5/50/95% quantiles of the defined values."""
    v = np.array([x for x in values if x is not None], float)
    if v.size == 0:
        return {}
    q = np.quantile(v, [0.05, 0.5, 0.95])
    return {"q05": float(q[0]), "median": float(q[1]), "q95": float(q[2])}


def run_calibration(
    out_dir: Path,
    files: list[Path],
    split: str,
    limit: int | None = None,
    size: int = 128,
    progress: Callable[[Iterable], Iterable] = iter,
) -> dict:
    """Measure, fit thresholds, and write calibration.md, calibration.json and thresholds.json."""
    from datetime import date

    from ..atomic import atomic_write_text
    from .report import calibration_markdown, dumps
    from .thresholds import thresholds_to_json

    data = collect(files, size=size, limit=limit, progress=progress)
    if not data.stems:
        raise ValueError("no animated clips found to calibrate on")
    meta = {
        "n_clips": len(data.stems),
        "split": split,
        "frames": 8,
        "fps": 8,
        "size": size,
        "cond": 3,
        "date": date.today().isoformat(),
        "command": "stickers eval calibrate",
    }
    source = (
        f"calibrated {meta['date']} on {meta['n_clips']} {split} Fluent clips vs broken versions "
        "(stickers eval calibrate)"
    )
    thresholds, accuracy = fit_thresholds(data, source)
    rates = pass_rates(data, thresholds)
    quantiles = {}
    for c in CRITERIA:
        pos = [v for k in POSITIVE_KINDS[c.name] for v in data.values[k][c.name]]
        neg = [v for k, t in TARGETS.items() if c.name in t for v in data.values[k][c.name]]
        quantiles[c.name] = {"positive": value_quantiles(pos), "negative": value_quantiles(neg)}
    md = calibration_markdown(rates, thresholds, accuracy, quantiles, KINDS, TARGETS, POSITIVE_KINDS, meta)
    th_json = thresholds_to_json(thresholds, meta | {"balanced_accuracy": accuracy})
    report = {
        "meta": meta,
        "pass_rates": rates,
        "balanced_accuracy": accuracy,
        "quantiles": quantiles,
        "targets": TARGETS,
        "positives": POSITIVE_KINDS,
        "thresholds": th_json["criteria"],
        "stems": data.stems,
        "values": data.values,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "calibration.md", md)
    atomic_write_text(out_dir / "calibration.json", dumps(report) + "\n")
    atomic_write_text(out_dir / "thresholds.json", dumps(th_json) + "\n")
    return {"markdown": md, "thresholds": th_json, "report": report}
