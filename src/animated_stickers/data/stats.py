"""Statistics of a prepared data folder (from its manifest): counts, frames, fps, motion, buckets, captions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import UserError
from .buckets import MotionBuckets
from .shards import read_jsonl

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def _quantiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    q = np.quantile(np.asarray(values, np.float64), QUANTILES)
    return {f"q{int(p * 100)}": round(float(v), 4) for p, v in zip(QUANTILES, q)} | {
        "mean": round(float(np.mean(values)), 4)}


def _rank_correlation(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return round(float(np.corrcoef(ra, rb)[0, 1]), 4)


def load_manifest(folder: str | Path) -> list[dict]:
    """The manifest records of a prepared folder; a clear error when it is not one."""
    folder = Path(folder)
    if not (folder / "manifest.jsonl").is_file():
        raise UserError(f"'{folder}': no manifest.jsonl; expected a folder made by `stickers data prepare`")
    return read_jsonl(folder / "manifest.jsonl")


def _word_coverage(anim: list[dict]) -> dict:
    """Clips per motion word (issue 12): how many clips show each VOCAB word at all and as their strongest
    motion, per source; every word has a row, so a word no clip shows reads 0."""
    from ..motion.words import VOCAB

    def count(rows: list[dict], first: bool) -> dict[str, int]:
        c = Counter(w for r in rows for w in (r.get("motion_words") or ["still"])[:1 if first else None])
        return {w: c.get(w, 0) for w in VOCAB}

    by_source: dict[str, list[dict]] = {}
    for r in anim:
        by_source.setdefault(r["source"], []).append(r)
    return {"any": count(anim, False), "strongest": count(anim, True),
            "strongest_by_source": {src: count(rs, True) for src, rs in sorted(by_source.items())}}


def dataset_stats(folder: str | Path) -> dict:
    """Counts, frames, fps, motion-score quantiles, buckets and caption coverage of a prepared folder."""
    folder = Path(folder)
    rows = load_manifest(folder)
    anim = [r for r in rows if r["kind"] == "animated"]
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    errors = read_jsonl(folder / "errors.jsonl")
    scored = [r for r in anim if r.get("scores")]
    fd = [r["scores"]["frame_diff"] for r in scored]
    mv_rows = [r for r in scored if r["scores"].get("mv") is not None]
    buckets = MotionBuckets.load(folder / "buckets.json") if (folder / "buckets.json").is_file() else None
    captioned = [r for r in rows if (r.get("caption") or "").strip()]
    return {
        "folder": str(folder),
        "samples": len(rows),
        "animated_clips": len(anim),
        "by_kind": dict(Counter(r["kind"] for r in rows)),
        "by_source": dict(Counter(r["source"] for r in rows)),
        "by_split": dict(Counter(r["split"] for r in rows)),
        "animated_by_split": dict(Counter(r["split"] for r in anim)),
        "unique_base": len({r.get("base") or r.get("name") for r in anim}),
        "frames": {"total": int(sum(r["n_frames"] for r in anim)),
                   **(_quantiles([r["n_frames"] for r in anim]) or {})},
        "fps": {**(_quantiles([r["fps"] for r in anim]) or {}),
                "rounded": dict(sorted(Counter(str(round(r["fps"])) for r in anim).items()))},
        "duration_s": _quantiles([r["duration_s"] for r in anim]),
        "resolution": dict(Counter(f"{r['width']}x{r['height']}" for r in rows)),
        "with_alpha": sum(bool(r.get("has_alpha")) for r in rows),
        "keyed": sum(bool(r.get("key_color")) for r in rows),
        "motion": {
            "frame_diff": _quantiles(fd),
            "mv": _quantiles([r["scores"]["mv"] for r in mv_rows]),
            "rank_correlation": _rank_correlation([r["scores"]["frame_diff"] for r in mv_rows],
                                                  [r["scores"]["mv"] for r in mv_rows]),
        },
        "buckets": None if buckets is None else {
            **buckets.to_dict(),
            "counts_all_animated": {f"{fps:g}": n for fps, n in sorted(Counter(
                r["bucket_fps"] for r in anim if r.get("bucket_fps")).items())},
        },
        "captions": {
            "with_caption": len(captioned),
            "coverage": round(len(captioned) / len(rows), 4) if rows else 0.0,
            "animated_coverage": round(sum(1 for r in anim if (r.get("caption") or "").strip()) / len(anim), 4)
            if anim else 0.0,
            "by_caption_source": dict(Counter(r.get("caption_source", "none") for r in rows)),
            "mean_keywords": round(float(np.mean([len(r.get("keywords") or []) for r in rows])), 2) if rows else 0,
        },
        "motion_words": _word_coverage(anim),
        "licenses": dict(Counter(r["license"] for r in rows)),
        "bytes": int(sum(r.get("bytes", 0) for r in rows)),
        "shards": len(summary.get("shards", [])),
        "skipped": sum(e.get("status") == "skipped" for e in errors),
        "skipped_reasons": dict(Counter(e.get("reason", "") for e in errors if e.get("status") == "skipped")),
        "errors": [f"{e.get('path')}: {e.get('reason')}" for e in errors if e.get("status") == "error"],
        "prepare_seconds_last_run": summary.get("seconds_this_run"),
    }


def format_stats(s: dict) -> str:
    """A short human-readable summary of `dataset_stats`."""
    lines = [
        (f"{s['folder']}: {s['samples']} samples ({s['animated_clips']} animated clips), {s['shards']} shards, "
         f"{s['bytes'] / 1e6:.1f} MB"),
        f"  by source: {s['by_source']}   by split: {s['by_split']}",
        (f"  frames: total {s['frames'].get('total')}, median {s['frames'].get('q50')}, "
         f"min {s['frames'].get('q0')}, max {s['frames'].get('q100')};  fps median {s['fps'].get('q50')}"),
        f"  motion frame_diff: {s['motion']['frame_diff']}",
        f"  motion mv:         {s['motion']['mv']}  (rank corr {s['motion']['rank_correlation']})",
        f"  captions: {s['captions']['with_caption']}/{s['samples']} ({100 * s['captions']['coverage']:.1f}%)",
        "  clips per motion word (shown at all / strongest): " + ", ".join(
            f"{w} {n}/{s['motion_words']['strongest'][w]}" for w, n in s["motion_words"]["any"].items()),
        f"  skipped {s['skipped']}, errors {len(s['errors'])}",
    ]
    if s["buckets"]:
        b = MotionBuckets.from_dict(s["buckets"])
        lines.append("  " + b.describe().replace("\n", "\n  "))
    return "\n".join(lines)
