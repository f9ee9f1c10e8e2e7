"""Automatic evaluation: judge generated animations against their conditioning images.

`judge(frames, image)` -> per-criterion raw value + pass/fail; `judge_folder(inputs, outputs)` does a
folder of stickers (a missing or unreadable output fails every criterion); `summarise` gives the pass
rate per criterion; `compare_motion_stats` compares generated and real motion where real clips exist.
With the artist's animation of a sticker (`--real DIR`), its record also carries the three motion
criteria (motionref.py: motion_size, motion_where, motion_parts) with their calibrated bands; every
record carries its motion size and parts share alone, for results with no reference clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.animation import AnimationReadError, read_animation
from ..errors import UserError
from ..prompts_file import PROMPTS_FILE, read_prompts_file
from ..rgba import resize_premultiplied, to_uint8, unpremultiply
from .detail import detail_ratio, frame_quality
from .measures import (
    CRITERIA,
    CRITERION_NAMES,
    NINE,
    Clip,
    colour_drift,
    default_cond_frame,
    make_clip,
    measure_all,
    motion_score,
)
from .motionref import MOTION_CRITERIA, clip_profile, compare, conditioning_frame, reference_profile, to_basis
from .relevance import motion_relevance, relevance_summary
from .thresholds import Band, Threshold, load_motion_section, load_thresholds

OUTPUT_SUFFIXES = (".webp", ".gif", ".png", ".apng", ".webm", ".mp4", ".mov")


@dataclass
class StickerResult:
    """One sticker's verdicts: {criterion: {value, threshold, pass, details}}; error when not judged."""

    stem: str
    criteria: dict[str, dict]
    output: str | None = None
    prompt: str | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def passed_all(self) -> bool:
        return all(v["pass"] for v in self.criteria.values())

    @property
    def passed_nine(self) -> bool:
        """All of the nine criteria judged before `blobs` (comparable with earlier runs)."""
        return all(self.criteria[n]["pass"] for n in NINE)

    def to_json(self) -> dict:
        return {
            "stem": self.stem,
            "prompt": self.prompt,
            "output": self.output,
            "error": self.error,
            "passed_all": self.passed_all,
            "criteria": self.criteria,
            **self.extra,
        }


def judge_clip(clip: Clip, thresholds: Mapping[str, Threshold]) -> dict[str, dict]:
    """Every criterion on a prepared clip: raw value, threshold, pass and details."""
    out = {}
    for name, m in measure_all(clip).items():
        th = thresholds[name]
        out[name] = {
            "value": m.value,
            "threshold": th.threshold,
            "pass": th.passes(m.value),
            "details": m.details,
        }
    return out


def judge(
    frames: np.ndarray,
    image: np.ndarray,
    thresholds: Mapping[str, Threshold] | None = None,
    cond: int | None = None,
) -> dict[str, dict]:
    """Judge straight-RGBA frames (T, H, W, 4) against the conditioning image (H, W, 4)."""
    return judge_clip(make_clip(frames, image, cond), thresholds or load_thresholds())


def failed_everywhere(stem: str, error: str, thresholds: Mapping[str, Threshold], **kw) -> StickerResult:
    """The verdict for an output that is missing or unreadable: every criterion fails, value None."""
    crit = {
        n: {"value": None, "threshold": thresholds[n].threshold, "pass": False, "details": {}}
        for n in CRITERION_NAMES
    }
    return StickerResult(stem, crit, error=error, **kw)


# ---- folders -------------------------------------------------------------------------------------


def find_output(outputs: Path, stem: str) -> Path | None:
    """The animation for `stem` in `outputs` (first of .webp .gif .png .apng .webm .mp4 .mov), or None."""
    for suffix in OUTPUT_SUFFIXES:
        p = outputs / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def read_image(path: Path) -> np.ndarray:
    """A still sticker as straight RGBA uint8 (H, W, 4)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"'{path}': unreadable input image ({type(e).__name__})") from None


def judge_folder(
    inputs: Path,
    outputs: Path,
    thresholds: Mapping[str, Threshold] | None = None,
    real: Mapping | None = None,
    cond: int | None = None,
    progress: Callable[[Iterable], Iterable] = iter,
    motion: dict | None = None,
) -> list[StickerResult]:
    """Judge every input's output; missing/unreadable outputs fail every criterion. With `real`
    (stem -> the artist's Animation), each record also gets the motion criteria against it (bands from
    `motion`, default thresholds.json's motion section) and the generated-vs-real motion statistics."""
    thresholds = thresholds or load_thresholds()
    motion = motion or load_motion_section()
    if not outputs.is_dir():
        raise UserError(f"'{outputs}': outputs folder not found")
    results = []
    for item in progress(read_prompts_file(inputs / PROMPTS_FILE, images_must_exist=True)):
        image = read_image(item.image)
        out = find_output(outputs, item.stem)
        if out is None:
            results.append(_failed(item.stem, "missing output", thresholds, motion, real, prompt=item.prompt))
            continue
        try:
            anim = read_animation(out)
        except AnimationReadError as e:
            results.append(_failed(item.stem, f"unreadable output: {e}", thresholds, motion, real,
                                   prompt=item.prompt, output=str(out)))
            continue
        result = judge_one(item.stem, anim.frames, image, thresholds,
                           cond if cond is not None else recorded_cond(out, anim.num_frames), prompt=item.prompt,
                           output=str(out), fps=anim.fps, label=item.motion, motion=motion,
                           real=None if real is None else real.get(item.stem))
        if real is not None and item.stem not in real:
            result.extra["vs_real_missing"] = True  # no artist clip of this sticker: motion alone only
        results.append(result)
    return results


def recorded_cond(out: Path, num_frames: int) -> int | None:
    """The conditioning index `out`'s sidecar records (`stickers animate --outputs`; sampling/resume.py), when
    it describes this file (the same frame count: a reader may merge identical neighbours); else None."""
    from ..sampling.resume import recorded_loop

    loop = recorded_loop(out)
    cond = loop.get("cond_index")
    return cond if loop.get("frames") == num_frames and isinstance(cond, int) else None


def _failed(stem: str, error: str, thresholds, motion: dict, real, **kw) -> StickerResult:
    """A missing or unreadable output: every criterion fails, the motion ones too where an artist clip exists."""
    res = failed_everywhere(stem, error, thresholds, **kw)
    if real is not None and stem in real:
        for name in MOTION_CRITERIA:
            res.criteria[name] = _verdict(None, motion["criteria"][name])
    return res


def judge_one(
    stem: str,
    frames: np.ndarray,
    image: np.ndarray,
    thresholds: Mapping[str, Threshold],
    cond: int | None = None,
    real=None,
    fps: float = 8.0,
    label: str | None = None,
    motion: dict | None = None,
    **kw,
) -> StickerResult:
    """Judge one animation (straight RGBA (T, H, W, 4) at `fps`); `label`: the prompt's intended motion
    (for relevance); with `real` (the artist's Animation of this sticker) also the motion criteria."""
    clip = make_clip(frames, image, cond)
    res = StickerResult(stem, judge_clip(clip, thresholds), **kw)
    res.extra["frames"] = int(frames.shape[0])
    res.extra["size"] = [int(frames.shape[1]), int(frames.shape[2])]
    res.extra["detail_ratio"] = detail_ratio(frames, image)  # fine detail kept (eval/detail.py)
    res.extra.update(motion_relevance(frames, clip.cond, label, fps))  # labelled vs measured motion
    # The motion basis anchors on the conditioning frame: the given (or recorded) one, else the frame nearest
    # the still.
    motion_cond = conditioning_frame(frames, image, cond)
    res.extra["cond_index"] = {"index": motion_cond, "from": "nearest" if motion_cond != cond else "recorded"}
    prof = clip_profile(frames, fps, motion_cond)
    res.extra["motion_alone"] = motion_alone_record(prof, (motion or {}).get("artist", {}))
    if real is not None:
        real_cond = conditioning_frame(real.frames, image)
        bands = (motion or load_motion_section())["criteria"]
        for name, value in compare(prof, reference_profile(real.frames, real.fps, real_cond)).items():
            res.criteria[name] = _verdict(value, bands[name])
        real_second = to_uint8(unpremultiply(to_basis(real.frames, real.fps, real_cond)))  # (8, h, w, 4)
        res.extra["vs_real"] = _vs_real(clip, make_clip(real_second, image))
        res.extra["vs_real"].update(frame_quality(frames, real_second))  # PSNR/SSIM at the real clip's size
    return res


def _verdict(value: float | None, band: Band) -> dict:
    return {"value": value, "threshold": [band.low, band.high], "pass": band.passes(value), "details": {}}


def motion_alone_record(prof, artist: dict) -> dict:
    """A result's motion with no reference clip: size (of the alpha box diagonal), parts share, and
    whether it hardly moves (below the calibrated floor)."""
    floor = artist.get("hardly_moves_below")
    size = 0.0 if prof is None else prof.size
    return {"size": size, "parts": None if prof is None else prof.parts,
            "hardly_moves": None if floor is None else bool(size < floor)}


# ---- summary -------------------------------------------------------------------------------------


def summarise(results: list[StickerResult], thresholds: Mapping[str, Threshold]) -> dict:
    """Pass rate per criterion over all stickers (missing/unreadable outputs count as failures)."""
    n = len(results)
    crit = {}
    for c in CRITERIA:
        values = [r.criteria[c.name]["value"] for r in results if r.criteria[c.name]["value"] is not None]
        passed = sum(1 for r in results if r.criteria[c.name]["pass"])
        crit[c.name] = {
            "question": c.question,
            "passed": passed,
            "n": n,
            "pass_rate": passed / n if n else 0.0,
            "threshold": thresholds[c.name].threshold,
            "pass_if": ">=" if c.higher_is_better else "<=",
            "median_value": float(np.median(values)) if values else None,
        }
    all_passed = sum(1 for r in results if r.passed_all)
    nine_passed = sum(1 for r in results if r.passed_nine)
    return {
        "n": n,
        "n_failed_to_read": sum(1 for r in results if r.error),
        "criteria": crit,
        "all_criteria": {"passed": all_passed, "n": n, "pass_rate": all_passed / n if n else 0.0},
        "all_nine": {"passed": nine_passed, "n": n, "pass_rate": nine_passed / n if n else 0.0},
        "detail_ratio": _quantiles(np.array([r.extra["detail_ratio"] for r in results if "detail_ratio" in r.extra])),
        "relevance": relevance_summary([r.extra.get("motion", {}) for r in results]),  # eval/relevance.py
        "motion_alone": motion_alone_summary([r.extra["motion_alone"] for r in results if "motion_alone" in r.extra],
                                             load_motion_section().get("artist", {})),
        **_motion_criteria_summary(results),
    }


def motion_alone_summary(records: list[dict], artist: dict) -> dict:
    """Median motion size and parts share, and the share that hardly moves, beside the artist clips'."""
    sizes = np.array([r["size"] for r in records], float)
    parts = np.array([r["parts"] for r in records if r["parts"] is not None], float)
    moves = [r["hardly_moves"] for r in records if r["hardly_moves"] is not None]
    return {"n": len(records), "size_median": float(np.median(sizes)) if sizes.size else None,
            "parts_median": float(np.median(parts)) if parts.size else None,
            "hardly_moves": float(np.mean(moves)) if moves else None,
            "artist_size_median": artist.get("size_median"), "artist_parts_median": artist.get("parts_median"),
            "hardly_moves_below": artist.get("hardly_moves_below")}


def _motion_criteria_summary(results: list[StickerResult]) -> dict:
    """Pass rates of the motion criteria over the stickers judged against an artist clip: each, and all
    three with existence (the calibration's bar); {} when none was."""
    judged = [r for r in results if all(n in r.criteria for n in MOTION_CRITERIA)]
    if not judged:
        return {}
    out = {}
    for name in MOTION_CRITERIA:
        values = [r.criteria[name]["value"] for r in judged if r.criteria[name]["value"] is not None]
        out[name] = {"passed": sum(r.criteria[name]["pass"] for r in judged), "n": len(judged),
                     "pass_rate": float(np.mean([r.criteria[name]["pass"] for r in judged])),
                     "threshold": judged[0].criteria[name]["threshold"],
                     "median_value": float(np.median(values)) if values else None}
    moving = [all(r.criteria[n]["pass"] for n in (*MOTION_CRITERIA, "existence")) for r in judged]
    out["all_motion"] = {"passed": int(sum(moving)), "n": len(judged), "pass_rate": float(np.mean(moving))}
    return {"motion_vs_real": out}


# ---- generated vs real ---------------------------------------------------------------------------


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 100.0 if mse < 1e-10 else min(100.0, 10 * np.log10(1.0 / mse))


def _vs_real(gen: Clip, real: Clip) -> dict:
    """Motion of a generated clip vs the real one, and the error of its middle (conditioning) frame."""
    size = real.frames.shape[1:3]
    g = resize_premultiplied(gen.frames, size)
    t = min(g.shape[0], real.frames.shape[0])
    return {
        "motion_generated": motion_score(gen),
        "motion_real": motion_score(real),
        "middle_psnr": _psnr(g[min(gen.cond, t - 1)], real.frames[min(real.cond, t - 1)]),
        "middle_mae": float(np.abs(g[min(gen.cond, t - 1)] - real.frames[min(real.cond, t - 1)]).mean()),
        "all_frames_psnr": _psnr(g[:t], real.frames[:t]),
        "colour_drift_generated": colour_drift(gen),
        "colour_drift_real": colour_drift(real),
    }


def _quantiles(x: np.ndarray) -> dict:
    if x.size == 0:
        return {"n": 0}
    q = np.quantile(x, [0.1, 0.5, 0.9])
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "q10": float(q[0]),
        "median": float(q[1]),
        "q90": float(q[2]),
    }


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs)."""
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.abs(fa - fb).max())


def _wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's distance between two 1-D samples (area between the quantile functions)."""
    q = np.linspace(0, 1, 201)
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


def compare_motion_stats(
    generated: Mapping[str, np.ndarray],
    real: Mapping[str, np.ndarray],
    images: Mapping[str, np.ndarray] | None = None,
    cond: int | None = None,
) -> dict:
    """Generated vs real motion for the stems both have: motion-score distributions (summary, KS,
    Wasserstein-1, per-sticker ratio) and per-sticker error of the middle frame (PSNR/MAE).
    Frames are straight RGBA (T, H, W, 4); `images` (stem -> conditioning image) defaults to the real
    clip's middle frame."""
    rows = []
    for s in sorted(set(generated) & set(real)):
        r = np.asarray(real[s])
        img = images.get(s) if images is not None else None
        if img is None:
            img = r[default_cond_frame(r.shape[0]) if cond is None else cond]
        rows.append({"stem": s, **_vs_real(make_clip(generated[s], img, cond), make_clip(r, img, cond))})
    return motion_stats_summary(rows)


def motion_stats_summary(rows: list[dict]) -> dict:
    """Aggregate per-sticker generated-vs-real rows (as made by `compare_motion_stats`/`judge_one`)."""
    g = np.array([r["motion_generated"] for r in rows])
    rr = np.array([r["motion_real"] for r in rows])
    out = {"n": len(rows), "motion_generated": _quantiles(g), "motion_real": _quantiles(rr)}
    if rows:
        out["motion_ks"] = _ks(g, rr)
        out["motion_wasserstein1"] = _wasserstein1(g, rr)
        out["motion_ratio_median"] = float(np.median(g / np.maximum(rr, 1e-6)))
        for key in ("middle_psnr", "middle_mae", "all_frames_psnr", "colour_drift_generated", "colour_drift_real"):
            out[key] = _quantiles(np.array([r[key] for r in rows]))
    out["per_sticker"] = rows
    return out
