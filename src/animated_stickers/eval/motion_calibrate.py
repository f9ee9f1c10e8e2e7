"""Calibrate the three motion criteria (motionref.py) on real held-out clips and broken copies.

For every held-out Fluent animation: the reference is one second at 8 fps around a conditioning
frame (a per-name phase, as realclips.py picks it); the positive is the artist's clip **one second
later** (`real_next`: the same emoji, other motion of the same loop, judged against the reference);
the broken kinds (motion_broken.py) move the reference's still unlike the artist. Thresholds are fitted
on one half of the emoji (by a hash of the name) and checked on the other half. Each bar is a
quantile of real_next on the fit half (POSITIVE_QUANTILES): the artist's own seconds vary (a Fluent
animation does one thing, then another), so the bars say how far from the artist a result may be
while the artist's own clips keep passing all three together; the broken copies on the check half
then show what those bars catch:
  motion_size   band [q05, q99] (small, frozen should fall under it)
  motion_where  above q05 (chance: swapped; ceiling: real_next)
  motion_parts  band [q07, q99] (bulk should fall under it)
The artist clips' own figures (median size, parts share) and the `hardly moves` floor (absolute size,
real_next vs small + frozen) go beside the thresholds, for results with no reference clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.animation import read_animation
from ..rgba import unpremultiply
from . import motion_broken as mb
from .motionref import (
    BASIS_COND,
    MOTION_CRITERIA,
    Reference,
    basis_flows,
    compare,
    loop_basis,
    profile,
    to_basis,
)
from .realclips import name_hash
from .thresholds import Band

POSITIVE = "real_next"
KINDS = (POSITIVE, "warped") + mb.MOTION_BROKEN
# Real clips' quantiles a bar may not be stricter than: (low, high); None = no bound on that side.
# Chosen on the fit set: the levels that keep >= 0.80 of the artist's next seconds passing all three while
# letting the fewest broken copies through (training split: 0.82 real, bulk 0.17, swapped 0.09, small 0).
POSITIVE_QUANTILES = {"motion_size": (0.05, 0.99), "motion_where": (0.05, None), "motion_parts": (0.07, 0.99)}
EXISTENCE = "existence"


@dataclass
class Window:
    """One real animation cut for calibration: the reference second, its loop and the second after it."""

    stem: str
    second: np.ndarray  # (8, h, w, 4) premultiplied basis, conditioning frame at BASIS_COND
    loop: np.ndarray  # (K, h, w, 4) the whole loop at 8 fps from the same conditioning frame
    next_second: np.ndarray  # (8, h, w, 4) one second later


def load_window(path: Path) -> Window | None:
    """A Fluent animation -> its reference second, loop and next second (None for stills, short files)."""
    anim = read_animation(path)
    n = anim.num_frames
    if n < 8:
        return None
    fps = anim.fps or 24.0
    cond = name_hash(path.stem) % n  # any phase: the loops are seamless
    return Window(path.stem, to_basis(anim.frames, fps, cond), loop_basis(anim.frames, fps, cond),
                  to_basis(anim.frames, fps, (cond + round(fps)) % n))


def _base(stem: str) -> str:
    """The emoji without skin tones: its variants are one animation in other colours."""
    from ..data.captions import base_key, is_codepoint_stem

    return base_key(stem) if is_codepoint_stem(stem) else stem.lower()


def half_of(stem: str) -> str:
    """'fit' or 'check': a fixed split of the emoji by a hash of the name without skin tones (so no
    emoji has a skin-tone twin on the other side)."""
    return "fit" if name_hash(_base(stem)) % 2 == 0 else "check"


def one_per_emoji(paths: list[Path]) -> list[Path]:
    """The first file of each emoji, skin-tone variants dropped (they would count one motion 6 times)."""
    seen: set[str] = set()
    out = []
    for p in paths:
        if _base(p.stem) not in seen:
            seen.add(_base(p.stem))
            out.append(p)
    return out


@dataclass
class MotionData:
    """Raw values per kind, aligned with `stems`: the three criteria, existence, and the absolute size
    and parts share of each clip (None where undefined)."""

    stems: list[str] = field(default_factory=list)
    values: dict[str, dict[str, list]] = field(
        default_factory=lambda: {k: {c: [] for c in (*MOTION_CRITERIA, EXISTENCE, "size", "parts")} for k in KINDS})


def kinds_of(w: Window, other_pull: np.ndarray, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """Every kind's basis frames for one window (`other_pull`: another emoji's backward flows), and the
    reference second's forward flows."""
    c = BASIS_COND
    pull = mb.pull_flows(w.second, c)
    push = basis_flows(w.second, c)
    return {
        POSITIVE: w.next_second,
        "warped": mb.warped(w.second, pull, c),
        "small": mb.small(w.second, pull, c),
        "bulk": mb.bulk(w.second, push, c, rng),
        "frozen": mb.frozen(w.second, c),
        "swapped": mb.swapped(w.second, pull, c, other_pull),
    }, push


def collect(windows: list[Window], progress: Callable[[Iterable], Iterable] = iter) -> MotionData:
    """Measure every kind of every window against its reference (another emoji: half the list away)."""
    from .measures import existence, make_clip

    data = MotionData()
    pulls: dict[int, np.ndarray] = {}
    for i, w in enumerate(progress(windows)):
        j = (i + len(windows) // 2) % len(windows)
        if j not in pulls:
            pulls[j] = mb.pull_flows(windows[j].second, BASIS_COND)
        rng = np.random.default_rng(name_hash(w.stem) % 2**32)
        kinds, push = kinds_of(w, pulls[j], rng)
        ref = Reference(profile(w.second, push), profile(w.loop, cond=0, wrap=True))
        still = unpremultiply(w.second[BASIS_COND])
        for kind, frames in kinds.items():
            p = profile(frames)
            row = compare(p, ref) | {
                "size": None if p is None else p.size,
                "parts": None if p is None else p.parts,
                EXISTENCE: existence(make_clip(unpremultiply(frames), still, BASIS_COND)).value,
            }
            for name, value in row.items():
                data.values[kind][name].append(value)
        data.stems.append(w.stem)
    return data


def _defined(values: list) -> np.ndarray:
    v = np.array([np.nan if x is None else x for x in values], float)
    return v[~np.isnan(v)]


def fit_motion_thresholds(data: MotionData, fit: np.ndarray, source: str) -> dict[str, Band]:
    """A band per criterion from real_next on the clips where `fit` is True (see the module docstring)."""
    out = {}
    for name in MOTION_CRITERIA:
        pos = _defined([v for v, f in zip(data.values[POSITIVE][name], fit) if f])
        q_low, q_high = POSITIVE_QUANTILES[name]
        high = None if q_high is None else _round(float(np.quantile(pos, q_high)))
        out[name] = Band(_round(float(np.quantile(pos, q_low))), high, source)
    return out


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def passes_all(data: MotionData, kind: str, bands: dict[str, Band], existence_bar) -> list[bool]:
    """Per clip of `kind`: does it pass the three motion criteria and existence?"""
    rows = zip(*(data.values[kind][n] for n in MOTION_CRITERIA), data.values[kind][EXISTENCE])
    return [all(bands[n].passes(v) for n, v in zip(MOTION_CRITERIA, vals[:3])) and existence_bar.passes(vals[3])
            for vals in rows]


def hardly_moves_floor(data: MotionData, fit: np.ndarray) -> float:
    """The absolute size (of the diagonal) below which a result 'hardly moves': the best split of the
    artist's seconds from the small and frozen copies on the fit half."""
    from .calibrate import choose_threshold

    pos = [v for v, f in zip(data.values[POSITIVE]["size"], fit) if f]
    neg = [v for k in ("small", "frozen") for v, f in zip(data.values[k]["size"], fit) if f]
    low, _ = choose_threshold(pos, neg, higher_is_better=True)
    return _round(min(low, float(np.quantile(_defined(pos), 0.05))))


def _windows(files: list[Path], limit: int | None, progress) -> list[Window]:
    windows = []
    for path in progress(one_per_emoji(files)):
        if limit is not None and len(windows) >= limit:
            break
        w = load_window(path)
        if w is not None:
            windows.append(w)
    return windows


def run_motion_calibration(out_dir: Path, files: list[Path], limit: int | None = None,
                           progress: Callable[[Iterable], Iterable] = iter,
                           train_files: list[Path] | None = None) -> dict:
    """Measure the held-out `files` (and `train_files`), one clip per emoji; fit and check (see
    `calibrate_from`); write motion-calibration.{md,json} to `out_dir`."""
    windows = _windows(files, limit, progress)
    if len(windows) < 4:
        raise ValueError(f"only {len(windows)} animated clips: at least 4 are needed to calibrate")
    extra = _windows(train_files, limit, progress) if train_files else []
    data = collect(windows + extra, progress)
    groups = [half_of(s) for s in data.stems[:len(windows)]] + ["train"] * len(extra)
    return calibrate_from(data, groups, out_dir)


def _rates(data: MotionData, bands: dict[str, Band], masks: dict[str, np.ndarray]) -> dict:
    """rates[kind][group]: share passing all three + existence, and each criterion, per group mask."""
    from .thresholds import load_thresholds

    existence_bar = load_thresholds()["existence"]
    rates = {}
    for kind in KINDS:
        ok = np.array(passes_all(data, kind, bands, existence_bar))
        per = {n: np.array([bands[n].passes(v) for v in data.values[kind][n]]) for n in MOTION_CRITERIA}
        rates[kind] = {g: {"all": float(ok[m].mean()), **{n: float(per[n][m].mean()) for n in MOTION_CRITERIA}}
                       for g, m in masks.items() if m.any()}
    return rates


def calibrate_from(data: MotionData, groups: list[str], out_dir: Path) -> dict:
    """Fit the bands and write the report. `groups` per clip: 'fit'/'check' (the halves of the held-out
    emoji) or 'train'. With training-split emoji, the bands are fitted on them (quantiles of hundreds of
    emoji, not of 30) and checked on every held-out emoji, which neither the bands nor any model saw; the
    report also gives the literal split (fitted on one held-out half, checked on the other). Without, the
    held-out halves are the fit and the check."""
    from datetime import date

    from ..atomic import atomic_write_text
    from .report import dumps

    g = np.array(groups)
    heldout = g != "train"
    fit = g == "train" if (g == "train").any() else g == "fit"
    check = heldout if (g == "train").any() else g == "check"
    today = date.today().isoformat()
    fitted_on = "training-split" if (g == "train").any() else "held-out (one half)"
    source = (f"calibrated {today} on {int(fit.sum())} {fitted_on} Fluent emoji, checked on "
              f"{int(check.sum())} held-out ones: stickers eval calibrate-motion")
    bands = fit_motion_thresholds(data, fit, source)
    rates = _rates(data, bands, {"check": check, "fit": fit})
    if (g == "train").any():  # the literal split, for comparison: fit on one held-out half, check the other
        halves = fit_motion_thresholds(data, g == "fit", "held-out half")
        for kind, r in _rates(data, halves, {"check_half": g == "check"}).items():
            rates[kind]["check_half_fit_on_other_half"] = r["check_half"]
    real_sizes = _defined([v for v, h in zip(data.values[POSITIVE]["size"], heldout) if h])
    real_parts = _defined([v for v, h in zip(data.values[POSITIVE]["parts"], heldout) if h])
    artist = {
        "size_median": float(np.median(real_sizes)),
        "size_q10_q90": [float(q) for q in np.quantile(real_sizes, [0.1, 0.9])],
        "parts_median": float(np.median(real_parts)),
        "parts_q10_q90": [float(q) for q in np.quantile(real_parts, [0.1, 0.9])],
        "hardly_moves_below": hardly_moves_floor(data, fit),
        "n": int(heldout.sum()),
    }
    meta = {"n_heldout": int(heldout.sum()), "n_fit": int(fit.sum()), "n_check": int(check.sum()),
            "fitted_on": fitted_on, "n_half_fit": int((g == "fit").sum()), "n_half_check": int((g == "check").sum()),
            "date": today, "basis": "1 s at 8 fps around the conditioning frame, 128 px; sizes in alpha-box diagonals",
            "command": "stickers eval calibrate-motion"}
    section = {"meta": meta, "artist": artist, "criteria": {n: bands[n].to_json() for n in MOTION_CRITERIA}}
    quantiles = {kind: {n: _quantiles([v for v, h in zip(data.values[kind][n], heldout) if h])
                        for n in (*MOTION_CRITERIA, "size", "parts")} for kind in KINDS}
    md = motion_calibration_markdown(section, rates, quantiles)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "motion-calibration.md", md)
    atomic_write_text(out_dir / "motion-calibration.json", dumps(
        {"section": section, "pass_rates": rates, "quantiles": quantiles, "stems": data.stems,
         "group": g.tolist(), "values": data.values}) + "\n")
    return {"markdown": md, "section": section, "pass_rates": rates}


def _quantiles(values: list) -> dict:
    v = _defined(values)
    if v.size == 0:
        return {"n": 0}
    q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"n": int(v.size), **{k: float(x) for k, x in zip(("q05", "q25", "median", "q75", "q95"), q)}}


def motion_calibration_markdown(section: dict, rates: dict, quantiles: dict) -> str:
    """The report: thresholds, pass rates where they were fitted and where checked, each kind's distributions."""
    meta, crit, artist = section["meta"], section["criteria"], section["artist"]
    trained = meta["fitted_on"] == "training-split"
    lines = [
        "# Calibration of the motion criteria (against the artist's own clip)", "",
        f"Fluent animated emoji, one clip per emoji (skin-tone variants are the same animation in other colours, "
        f"so they are left out), {meta['date']}; basis: {meta['basis']}. Bands fitted on {meta['n_fit']} "
        f"{meta['fitted_on']} emoji (`fit`), checked on {meta['n_check']} held-out emoji (`check`) that neither "
        "the bands nor any model saw." + (
            f" For comparison, the literal split: bands fitted on {meta['n_half_fit']} held-out emoji and "
            f"checked on the other {meta['n_half_check']} (last columns; quantiles of 30 emoji are coarse)."
            if trained else "") +
        " Reproduce: `stickers eval calibrate-motion --check-train --install`.", "",
        "## Thresholds", "", "| criterion | passes if | source |", "|---|---|---|",
    ]
    for name, b in crit.items():
        band = f">= {b['low']:.4g}" + ("" if b.get("high") is None else f" and <= {b['high']:.4g}")
        lines.append(f"| {name} | {band} | {b['source']} |")
    literal = "check_half_fit_on_other_half"
    lines += ["", "## Share passing (all = the three criteria and existence)", "",
              "| kind | all (check) | size (check) | where (check) | parts (check) | all (fit) |" +
              (" all, literal split (check half) |" if trained else ""),
              "|---|---:|---:|---:|---:|---:|" + ("---:|" if trained else "")]
    for kind, r in rates.items():
        c = r["check"]
        lines.append(f"| {kind} | **{c['all']:.2f}** | {c['motion_size']:.2f} | {c['motion_where']:.2f} | "
                     f"{c['motion_parts']:.2f} | {r['fit']['all']:.2f} |" +
                     (f" {r[literal]['all']:.2f} |" if trained else ""))
    lines += ["", "Kinds: `real_next` the artist's clip one second later (should pass); `warped` the artist's "
              "motion moving the still by the warp render (should pass); `small` that motion x 0.15, `bulk` the "
              "still moved rigidly as much as the artist, `frozen` the still repeated, `swapped` another emoji's "
              "artist motion laid on this still at this clip's size (each should fail).", "",
              "## Distributions over the held-out emoji (q05 / q25 / median / q75 / q95)", "",
              "| kind | motion_size | motion_where | motion_parts | size (diagonals) | parts share |",
              "|---|---|---|---|---|---|"]
    for kind, q in quantiles.items():
        cells = []
        for n in (*MOTION_CRITERIA, "size", "parts"):
            d = q[n]
            cells.append("-" if not d.get("n") else " / ".join(f"{d[k]:.3g}" for k in ("q05", "q25", "median",
                                                                                        "q75", "q95")))
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "## The artist's clips, for results with no reference clip", "",
              f"Median motion {artist['size_median']:.4f} of the alpha box diagonal (q10-q90 "
              f"{artist['size_q10_q90'][0]:.4f}-{artist['size_q10_q90'][1]:.4f}); median parts share "
              f"{artist['parts_median']:.2f} (q10-q90 {artist['parts_q10_q90'][0]:.2f}-"
              f"{artist['parts_q10_q90'][1]:.2f}); a result **hardly moves** below "
              f"{artist['hardly_moves_below']:.4g} of the diagonal.", ""]
    return "\n".join(lines)


def kinds_sheet(w: Window, other: Window, out: Path, tile: int = 96) -> list[str]:
    """A contact sheet of one emoji's calibration kinds (rows: the reference second, then each kind's 8
    frames), each labelled with its three raw values against the reference: what the criteria see."""
    from ..data.preview import contact_sheet, over_checkerboard
    from ..rgba import fit_pad_frames, to_uint8

    kinds, push = kinds_of(w, mb.pull_flows(other.second, BASIS_COND), np.random.default_rng(0))
    ref = Reference(profile(w.second, push), profile(w.loop, cond=0, wrap=True))
    rows, labels = [w.second], [f"{w.stem}: the artist's second (reference; conditioning frame {BASIS_COND})"]
    for kind, frames in kinds.items():
        v = compare(profile(frames), ref)
        rows.append(frames)
        labels.append(f"{kind}: size {_show(v['motion_size'])}  where {_show(v['motion_where'])}  "
                      f"parts {_show(v['motion_parts'])}")
    tiles = [over_checkerboard(fit_pad_frames(to_uint8(unpremultiply(r)), tile)) for r in rows]  # (8, tile, tile, 3)
    contact_sheet(tiles, labels, tile, out)
    return labels


def _show(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
