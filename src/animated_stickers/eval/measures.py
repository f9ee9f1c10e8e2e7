"""Automatic proxies for the paper's motion-quality questions (section 4.1), one function each.

Every measure takes a `Clip` (the generated animation and its conditioning image, brought to one
analysis canvas) and returns a `Measured` raw value plus details; the pass/fail decision against a
calibrated threshold lives in thresholds.py. All maths is on premultiplied RGBA in [0, 1] so the
colour of invisible pixels never counts. Questions the pixels cannot answer (relevance, expression,
prompt similarity) are left to the human evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from ..config import cond_index
from ..flow import frame_flow, warp_along
from ..rgba import fit_premultiplied, premultiply, resize_premultiplied
from .imageops import (
    blur,
    centroid,
    dilate,
    downscale,
    erode,
    opening,
    shift,
)

ANALYSIS_SIZE = 128  # longest side of the canvas the measures run on (speed; thresholds assume it)
SOLID = 0.5  # alpha above which a pixel belongs to the body mask
_EPS_DIFF = 2e-3  # a per-body-pixel change below this (~0.5/255) is treated as "no change"


@dataclass
class Measured:
    """A raw value (None when it cannot be computed, which counts as a failure) and its details."""

    value: float | None
    details: dict = field(default_factory=dict)


@dataclass
class Clip:
    """An animation (T, H, W, 4) and its conditioning image (H, W, 4), premultiplied, on one canvas."""

    frames: np.ndarray  # (T, H, W, 4) premultiplied float32
    image: np.ndarray  # (H, W, 4) premultiplied float32
    cond: int  # index of the frame that should reproduce `image`

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @cached_property
    def alpha(self) -> np.ndarray:  # (T, H, W)
        return self.frames[..., 3]

    @cached_property
    def masks(self) -> np.ndarray:  # (T, H, W) bool
        return self.alpha > SOLID

    @cached_property
    def image_mask(self) -> np.ndarray:  # (H, W) bool
        return self.image[..., 3] > SOLID

    @cached_property
    def body_fraction(self) -> float:
        """Fraction of the canvas the body ever covers (normaliser; floored so tiny bodies stay sane)."""
        union = np.maximum(self.alpha.max(0), self.image[..., 3])
        return max(float(union.mean()), 0.02)

    @cached_property
    def coarse(self) -> np.ndarray:
        """Frames at ~1/4 resolution, slightly blurred: motion there is small relative to the blur, so
        pixel differences behave like derivatives of a smooth signal (used by smoothness/looping)."""
        f = max(1, max(self.frames.shape[1:3]) // 32)
        return blur(downscale(self.frames, f, (1, 2)), 1, (1, 2))


def default_cond_frame(num_frames: int) -> int:
    """The conditioning frame the sampler uses by default: config.cond_index (3 of 8, 7 of 16)."""
    return cond_index(num_frames)


def make_clip(
    frames: np.ndarray, image: np.ndarray, cond: int | None = None, size: int = ANALYSIS_SIZE
) -> Clip:
    """Bring straight-RGBA frames (T, H, W, 4) and image (h, w, 4) (uint8 or float in [0, 1]) onto one
    canvas: frames scaled so the longest side is <= `size`; the image fitted into that canvas."""
    frames = to_unit(frames)
    image = to_unit(image)
    if frames.ndim != 4 or frames.shape[-1] != 4 or image.ndim != 3 or image.shape[-1] != 4:
        raise ValueError(f"expected frames (T,H,W,4) and image (H,W,4), got {frames.shape} and {image.shape}")
    t, h, w, _ = frames.shape
    scale = min(1.0, size / max(h, w))
    canvas = (max(1, round(h * scale)), max(1, round(w * scale)))
    pf = resize_premultiplied(premultiply(frames), canvas)
    pi = premultiply(image)
    same_aspect = abs(image.shape[0] / image.shape[1] - h / w) < 0.02 * (h / w)
    pi = resize_premultiplied(pi, canvas) if same_aspect else fit_premultiplied(pi, canvas)
    return Clip(pf, pi, default_cond_frame(t) if cond is None else min(cond, t - 1))


def to_unit(x: np.ndarray) -> np.ndarray:
    """uint8 or float RGBA -> float32 in [0, 1] (uint8 divided by 255)."""
    x = np.asarray(x)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


# ---- (1) existence -------------------------------------------------------------------------------


def motion_score(clip: Clip) -> float:
    """Mean absolute frame-to-frame change per body pixel (premultiplied RGBA); 0 for a still."""
    if clip.num_frames < 2:
        return 0.0
    d = np.abs(np.diff(clip.frames, axis=0)).mean()
    return float(d / clip.body_fraction)


def existence(clip: Clip) -> Measured:
    """Is there any motion? Raw value: `motion_score` (higher = more motion)."""
    return Measured(motion_score(clip), {"frames": clip.num_frames})


# ---- (3) consistency -----------------------------------------------------------------------------


def _aligned_masks(masks: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Masks (T, H, W) translated by whole pixels so their centroids sit on `target`'s centroid."""
    c0 = centroid(target.astype(np.float32))
    cs = centroid(masks.astype(np.float32))
    moves = np.round(c0 - cs).astype(int)
    return np.stack([shift(m, int(dy), int(dx)) for m, (dy, dx) in zip(masks, moves)])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU over the last two axes (1 for two empty masks)."""
    inter = np.logical_and(a, b).sum(axis=(-2, -1))
    union = np.logical_or(a, b).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def consistency(clip: Clip) -> Measured:
    """Does the body keep its shape? Raw value: min(mean IoU of each frame's alpha mask with the input's,
    worst IoU between consecutive frames), masks centroid-aligned so bodily translation is free.
    Slow morphing away from the input lowers the first, frame-to-frame wobble the second."""
    m0 = clip.image_mask
    if not m0.any():
        return Measured(None, {"reason": "input has no opaque pixels"})
    aligned = _aligned_masks(clip.masks, m0)
    vs_input = _iou(aligned, m0[None])
    consecutive = _iou(aligned[1:], aligned[:-1]) if clip.num_frames > 1 else np.ones(1)
    areas = clip.masks.sum(axis=(1, 2)) / m0.sum()
    aspects = np.array([_aspect(m) for m in clip.masks]) / max(_aspect(m0), 1e-6)
    return Measured(
        float(min(vs_input.mean(), consecutive.min())),
        {
            "mean_iou_vs_input": float(vs_input.mean()),
            "min_iou_vs_input": float(vs_input.min()),
            "min_iou_consecutive": float(consecutive.min()),
            "max_area_change": float(np.abs(areas - 1.0).max()),
            "max_aspect_change": float(np.abs(np.log(np.maximum(aspects, 1e-6))).max()),
        },
    )


def _aspect(mask: np.ndarray) -> float:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return 0.0
    return (cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1)


# ---- (4) distortions / flicker -------------------------------------------------------------------


def _haar_diagonal(x: np.ndarray) -> np.ndarray:
    """Finest-scale diagonal Haar detail over 2x2 blocks of (..., H, W, C): orthonormal, so iid noise of
    std s gives coefficients of std s while smooth shading and sparse edges give ~0 almost everywhere."""
    h, w = (x.shape[-3] // 2) * 2, (x.shape[-2] // 2) * 2
    x = x[..., :h, :w, :]
    return (x[..., 0::2, 0::2, :] - x[..., 0::2, 1::2, :] - x[..., 1::2, 0::2, :] + x[..., 1::2, 1::2, :]) / 2


def distortions(clip: Clip) -> Measured:
    """Is it free of flicker? Raw value: the largest per-transition noise level of the frame-to-frame change,
    estimated robustly (Donoho's MAD: median |finest diagonal detail| / 0.6745) over body pixels. Motion of
    drawn shapes changes smooth regions smoothly and edges sparsely (median ~0); per-frame grain, boiling
    texture and flicker change every pixel independently."""
    if clip.num_frames < 2:
        return Measured(0.0, {})
    detail = np.abs(_haar_diagonal(np.diff(clip.frames, axis=0)))  # (T-1, H/2, W/2, 4)
    body = np.minimum(clip.alpha[:-1], clip.alpha[1:]) > SOLID
    body = body[:, 0::2, 0::2][:, : detail.shape[1], : detail.shape[2]]
    sigma = np.array([np.median(d[b]) / 0.6745 if b.any() else 0.0 for d, b in zip(detail, body)])
    return Measured(float(sigma.max()), {"median_transition_noise": float(np.median(sigma))})


# ---- (5) motion curves ---------------------------------------------------------------------------


def smoothness(clip: Clip) -> Measured:
    """Smooth motion curves? Raw value: RMS second temporal difference over RMS central first difference
    on the coarse frames. Constant velocity gives 0, an 8-frame oscillation ~0.4, independent jitter ~1.7."""
    if clip.num_frames < 3:
        return Measured(None, {"reason": "needs at least 3 frames"})
    x = clip.coarse
    first = x[2:] - x[:-2]
    second = x[2:] - 2 * x[1:-1] + x[:-2]
    floor = (_EPS_DIFF * clip.body_fraction) ** 2
    ratio = np.sqrt((second**2).mean() / ((first**2).mean() + floor))
    # Centroid path of the body: the animator's "motion curve" (reported, not judged).
    path = centroid(clip.alpha)
    jerk = np.abs(np.diff(path, 2, axis=0)).mean() if clip.num_frames >= 3 else 0.0
    return Measured(float(ratio), {"centroid_accel_px": float(jerk)})


# ---- (6) outline ---------------------------------------------------------------------------------

OUTLINE_MAX_SPREAD = 0.06  # a band whose colour varies less than this (std, [0, 1]) counts as an outline


def _ring_features(prgba: np.ndarray, mask: np.ndarray, width: int) -> np.ndarray:
    """Alpha-weighted mean straight colour (3) and colour spread (1) of the band inside the silhouette."""
    ring = mask & ~erode(mask, width)  # (..., H, W)
    w = ring * prgba[..., 3]
    wsum = np.maximum(w.sum(axis=(-2, -1)), 1e-6)[..., None]  # (..., 1)
    straight = prgba[..., :3] / np.maximum(prgba[..., 3:4], 1e-3)
    # sum(premultiplied) / sum(alpha) over the band = alpha-weighted mean of the straight colour.
    mean = (prgba[..., :3] * ring[..., None]).sum(axis=(-3, -2)) / wsum
    var = (((straight - mean[..., None, None, :]) ** 2) * w[..., None]).sum(axis=(-3, -2)) / wsum
    return np.concatenate([mean, np.sqrt(var).mean(-1, keepdims=True)], -1)


def outline(clip: Clip) -> Measured:
    """Does the outline move with the body? Raw value: the largest change (mean abs, [0, 1]) of the outline
    band's colour (mean and spread) vs the input's. When the outline stays behind or the drawing slides
    under the silhouette, the band inside the silhouette shows other colours. Inputs without an outline
    (a band of varied colour, e.g. shaded 3D emoji) have nothing to check: value 0, `applicable` False."""
    if not clip.image_mask.any():
        return Measured(None, {"reason": "input has no opaque pixels"})
    width = max(1, round(max(clip.frames.shape[1:3]) / 64))  # 2 px at 128: inside a typical outline
    f0 = _ring_features(clip.image, clip.image_mask, width)
    if f0[3] > OUTLINE_MAX_SPREAD:
        return Measured(0.0, {"applicable": False, "input_band_spread": float(f0[3])})
    ft = _ring_features(clip.frames, clip.masks, width)  # (T, 4)
    dist = np.abs(ft - f0).mean(-1)
    return Measured(
        float(dist.max()), {"applicable": True, "mean_change": float(dist.mean()), "band_px": width}
    )


# ---- (7) looping ---------------------------------------------------------------------------------


def looping(clip: Clip) -> Measured:
    """Does it loop? Raw value: the last->first change over the largest ordinary frame-to-frame change
    (coarse frames, small floor so a still clip scores 1): a loop's jump back is just another step."""
    if clip.num_frames < 3:
        return Measured(None, {"reason": "needs at least 3 frames"})
    x = clip.coarse
    ordinary = np.abs(np.diff(x, axis=0)).mean(axis=(1, 2, 3))
    wrap = float(np.abs(x[0] - x[-1]).mean())
    floor = _EPS_DIFF * clip.body_fraction
    top = float(ordinary.max())
    return Measured(
        float((wrap + floor) / (top + floor)),
        {"wrap_change": wrap, "max_change": top, "median_change": float(np.median(ordinary))},
    )


# ---- (8) clipping --------------------------------------------------------------------------------


def clipping(clip: Clip) -> Measured:
    """Is anything cut by the canvas? Raw value: the largest fraction of the 1-px canvas border covered by
    opaque body in a frame where the input's body does not touch it."""
    border = np.zeros(clip.image_mask.shape, bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    allowed = clip.image_mask & border
    touching = clip.masks & border & ~allowed  # (T, H, W)
    frac = touching.sum(axis=(1, 2)) / border.sum()
    return Measured(float(frac.max()), {"frames_touching": int((frac > 0).sum())})


# ---- (10) background -----------------------------------------------------------------------------


def _stray_alpha(alpha: np.ndarray) -> np.ndarray:
    """Alpha mass outside the body (opened mask, grown by a few px for soft edges), per canvas pixel."""
    body = dilate(opening(alpha > SOLID, 1), 3)
    return (alpha * ~body).mean(axis=(-2, -1))


def background(clip: Clip) -> Measured:
    """Does the background stay transparent? Raw value: the largest stray alpha (halo, specks, haze) in a
    frame beyond what the input already has, as a fraction of the canvas."""
    stray = _stray_alpha(clip.alpha)
    base = float(_stray_alpha(clip.image[..., 3]))
    return Measured(float(max(0.0, stray.max() - base)), {"input_stray": base})


# ---- colour blobs (beyond the paper's questions) ------------------------------------------------

BLOB_REACH = 2  # px (at 128): flow errors up to this far are forgiven
BLOB_COLOUR = 0.2  # a pixel whose premultiplied RGBA differs by more than this (max channel) is unexplained
BLOB_MAX_SHARE = 0.015  # a blob is an unexplained patch of at most this share of the input's body area


def _unexplained(frames: np.ndarray, moved: np.ndarray, reach: int, tol: float) -> np.ndarray:
    """(T, H, W) bool: pixels of `frames` no pixel of `moved` (the input carried into each frame) within
    `reach` px matches to within `tol` on every premultiplied channel."""
    t, h, w, _ = frames.shape
    pad = np.pad(moved, ((0, 0), (reach, reach), (reach, reach), (0, 0)), mode="edge")
    best = np.full((t, h, w), np.inf, np.float32)
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            best = np.minimum(best, np.abs(frames - pad[:, dy : dy + h, dx : dx + w]).max(-1))
    return best > tol


def blobs(clip: Clip) -> Measured:
    """Free of colour blobs? Raw value: the largest share (of the input's body area) of a frame covered by
    small patches the input cannot explain. The input is carried into each frame by dense flow (DIS); a
    pixel no moved input pixel within 2 px matches is unexplained; an opening drops 1-2 px seams, and only
    patches of at most 1.5% of the body count. Real motion is explained by the flow, and what it cannot
    explain in real clips (a running limb, a paw stepping in) comes in large coherent patches; a model
    that smears what it moves leaves scattered specks and colour blobs, which only this measure sees."""
    area = float(clip.image[..., 3].sum())
    if area < 1.0:
        return Measured(None, {"reason": "input has no opaque pixels"})
    zero = np.zeros((*clip.frames.shape[1:3], 2), np.float32)
    flows = np.stack([zero if i == clip.cond else frame_flow(f, clip.image) for i, f in enumerate(clip.frames)])
    moved = warp_along(clip.image, flows)  # (T, H, W, 4): the input moved into every frame
    odd = opening(_unexplained(clip.frames, moved, BLOB_REACH, BLOB_COLOUR), 1)
    shares = np.zeros(clip.num_frames)
    for t, m in enumerate(odd):
        _, _, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
        sizes = stats[1:, cv2.CC_STAT_AREA]  # row 0 is the background
        shares[t] = sizes[sizes <= BLOB_MAX_SHARE * area].sum() / area
    return Measured(float(shares.max()), {"median_share": float(np.median(shares)),
                                          "frames_with_blobs": int((shares > 0).sum())})


# ---- identity ------------------------------------------------------------------------------------


def _ssim(a: np.ndarray, b: np.ndarray, r: int = 3) -> float:
    """Mean SSIM over channels with (2r+1)^2 box windows (Wang et al. 2004 constants, range 1)."""
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a, r, (0, 1)), blur(b, r, (0, 1))
    va = blur(a * a, r, (0, 1)) - mu_a**2
    vb = blur(b * b, r, (0, 1)) - mu_b**2
    cov = blur(a * b, r, (0, 1)) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return float(s.mean())


def _colour_histograms(prgba: np.ndarray, bins: int = 4) -> np.ndarray:
    """Alpha-weighted histograms of straight colour, bins^3 cells, normalised to sum 1: (..., bins^3)."""
    straight = np.clip(prgba[..., :3] / np.maximum(prgba[..., 3:4], 1e-3), 0, 1 - 1e-6)
    idx = (straight * bins).astype(np.int64)
    cell = (idx[..., 0] * bins + idx[..., 1]) * bins + idx[..., 2]  # (..., H, W)
    lead = prgba.shape[:-3]
    flat_cell = cell.reshape(-1, cell.shape[-2] * cell.shape[-1])
    flat_w = prgba[..., 3].reshape(flat_cell.shape)
    hist = np.stack([np.bincount(c, weights=w, minlength=bins**3) for c, w in zip(flat_cell, flat_w)])
    hist /= np.maximum(hist.sum(-1, keepdims=True), 1e-6)
    return hist.reshape(*lead, bins**3)


def colour_drift(clip: Clip) -> float:
    """How far the colours wander from the input: the largest total-variation distance (0 = same colour
    mix, 1 = disjoint) between a frame's alpha-weighted colour histogram and the input image's.
    Not a pass/fail criterion (uncalibrated): a report next to the same number for real clips, so
    re-drawn or smeared colours show even where silhouettes and motion look right."""
    frames, image = _colour_histograms(clip.frames), _colour_histograms(clip.image[None])[0]
    return float(0.5 * np.abs(frames - image).sum(-1).max())


def identity(clip: Clip) -> Measured:
    """Does the conditioning frame reproduce the input? Raw value: PSNR (dB, capped at 100) on premultiplied
    RGBA between frame `cond` and the input; SSIM reported alongside."""
    a, b = clip.frames[clip.cond], clip.image
    mse = float(((a - b) ** 2).mean())
    psnr = 100.0 if mse < 1e-10 else min(100.0, 10 * np.log10(1.0 / mse))
    return Measured(float(psnr), {"ssim": _ssim(a, b), "cond_frame": clip.cond})


@dataclass(frozen=True)
class Criterion:
    """One automatic question: the paper's name, the measure, and which way is better."""

    name: str
    measure: Callable[[Clip], Measured]
    higher_is_better: bool
    question: str


CRITERIA: tuple[Criterion, ...] = (
    Criterion("existence", existence, True, "Is there any motion in the animated sticker?"),
    Criterion("consistency", consistency, True, "Do the characters remain in proportion and consistent?"),
    Criterion("distortions", distortions, False, "Is the animated sticker free of flicker or distortion?"),
    Criterion("motion_curves", smoothness, False, "Does the animation use smooth motion curves?"),
    Criterion("outline", outline, False, "Does the outline move with the motion of the sticker?"),
    Criterion("looping", looping, False, "Does the animation play in a continuous loop?"),
    Criterion("clipping", clipping, False, "Are no integral elements clipped by the canvas?"),
    Criterion("background", background, False, "Does the background stay transparent (no halo/noise)?"),
    Criterion("identity", identity, True, "Does the conditioning frame match the input sticker?"),
    Criterion("blobs", blobs, False, "Are the frames free of colour blobs and specks the sticker lacks?"),
)
CRITERION_NAMES = tuple(c.name for c in CRITERIA)
# The nine judged before `blobs` existed (2026-12-03): earlier runs' and the issues' "all nine" figures.
NINE = tuple(n for n in CRITERION_NAMES if n != "blobs")


def measure_all(clip: Clip) -> dict[str, Measured]:
    """Run every criterion's measure on one clip."""
    return {c.name: c.measure(clip) for c in CRITERIA}
