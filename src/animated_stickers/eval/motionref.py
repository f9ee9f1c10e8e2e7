"""Motion against the artist's own clip (issue 26): how much it moves, where, and which parts.

Every clip is first brought to one basis, so that frame rate, loop length and resolution do not move
the figures: one second at 8 fps around its conditioning frame (3 frames before, 4 after, wrapping
round the loop), fitted into 128 px. Motion is the dense flow (flow.py, OpenCV DIS) from the
conditioning frame to every other frame of that second, in units of the **diagonal of the
conditioning frame's alpha box** (the sticker as drawn, so a sticker drawn smaller still compares).

A `MotionProfile` holds what the criteria need of one clip:
  size    mean |flow| over the sticker's pixels and the 7 other frames (units of the diagonal);
  energy  the motion-energy maps: mean |dx| and mean |dy| per pixel of the flow between consecutive
          frames (the speed, which does not depend on where in the loop the conditioning frame
          sits), blurred, cropped to the alpha box and resampled to a 32 x 32 grid (box coordinates:
          a sticker drawn at another scale or place still lines up; two axes: a bounce and a sway are
          other places);
  parts   the share of the motion that the best per-frame similarity transform (translation,
          rotation, uniform scale) does not explain: near 0.1 for a body moved as one piece (flow
          noise), 0.5-1 when parts (a hand, a wing, a head) move on their own. None when the clip
          hardly moves.
The three criteria compare a result's one-second profile with the real clip's (`Reference`):
  motion_size   result size / the real second's size       (passes inside a calibrated band)
  motion_where  rank correlation of the energy maps with those of the artist's **whole loop** (at
                8 fps, up to 4 s: every place the artist moves, so the result need not pick the same
                second), over the union of the two bodies
  motion_parts  result parts share - the real second's      (passes inside a calibrated band)
Why speed maps against the whole loop for `where` (measured on 183 held-out Fluent clips): a Fluent
animation does one thing, then another, so maps of the displacement from the conditioning frame over
one second put the artist's next second and another emoji's motion on this still too close (the
next second passed 0.84 at a bar that another emoji's motion passed 0.17-0.3 of the time); speed maps
against the whole loop pass the next second 0.90 and another emoji's motion 0.03 (check half).
Thresholds and their calibration: motion_calibrate.py, thresholds.json ("motion" section).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import cond_index
from ..flow import frame_flow
from ..rgba import premultiply, resize_premultiplied
from .measures import to_unit

BASIS_FPS = 8.0
BASIS_FRAMES = 8  # one second at 8 fps
BASIS_COND = cond_index(BASIS_FRAMES)  # the conditioning frame's place in the basis (the paper's 3 of 8)
BASIS_SIZE = 128  # longest side of the analysis canvas
GRID = 32  # energy maps are compared on a GRID x GRID grid over the alpha box
ENERGY_BLUR = 5.0  # px at the 128-px basis (~1.5 grid cells): flow noise of shaded 3D emoji averages out
LOOP_SECONDS = 4.0  # the reference loop is read for at most this long (Fluent loops are ~3 s)
SOLID = 0.5  # alpha above which a pixel belongs to the body
STILL_FLOOR = 1e-3  # below this mean motion (of the diagonal) the parts share is undefined
MOTION_CRITERIA = ("motion_size", "motion_where", "motion_parts")


@dataclass
class MotionProfile:
    size: float  # mean |flow| / diagonal over body pixels and frames
    energy: np.ndarray  # (2, GRID, GRID) mean |dx|, |dy| / diagonal per box cell
    mask: np.ndarray  # (GRID, GRID) bool: cells inside the body
    parts: float | None  # share of |flow| no similarity transform explains (None: hardly moves)
    diagonal: float  # alpha box diagonal in basis pixels


def basis_indices(num_frames: int, fps: float, cond: int) -> np.ndarray:
    """Frame indices (BASIS_FRAMES,) of one second at 8 fps around `cond`, wrapping round the loop: a
    clip at 24 fps takes every third frame, an 8-fps clip every frame, a shorter loop repeats."""
    fps = fps if fps > 0 else BASIS_FPS
    offsets = np.round((np.arange(BASIS_FRAMES) - BASIS_COND) * fps / BASIS_FPS).astype(int)
    return (cond + offsets) % num_frames


def _premultiplied_at(frames: np.ndarray, idx: np.ndarray, size: int) -> np.ndarray:
    """Straight RGBA frames (T, H, W, 4), uint8 or float -> frames `idx`, premultiplied float32 with the
    longest side `size`."""
    x = premultiply(to_unit(np.asarray(frames)[idx]))
    h, w = x.shape[1:3]
    scale = size / max(h, w)
    return resize_premultiplied(x, (max(1, round(h * scale)), max(1, round(w * scale))))


def to_basis(frames: np.ndarray, fps: float, cond: int, size: int = BASIS_SIZE) -> np.ndarray:
    """Straight RGBA frames (T, H, W, 4), uint8 or float -> premultiplied (8, h, w, 4) float32 with the
    longest side `size` and the conditioning frame at BASIS_COND."""
    return _premultiplied_at(frames, basis_indices(len(frames), fps, cond), size)


def loop_basis(frames: np.ndarray, fps: float, cond: int, size: int = BASIS_SIZE) -> np.ndarray:
    """The whole loop at 8 fps starting at `cond` (at most LOOP_SECONDS), premultiplied (K, h, w, 4)
    with the conditioning frame at index 0."""
    n = len(frames)
    fps = fps if fps > 0 else BASIS_FPS
    k = max(2, min(round(n * BASIS_FPS / fps), round(LOOP_SECONDS * BASIS_FPS)))
    return _premultiplied_at(frames, (cond + np.round(np.arange(k) * fps / BASIS_FPS).astype(int)) % n, size)


def conditioning_frame(frames: np.ndarray, still: np.ndarray, recorded: int | None = None) -> int:
    """The conditioning frame of a clip (T, H, W, 4): the index it records (an output's sidecar,
    sampling/resume.recorded_loop: 0 on the motion path, 3 of 8 on the video path) when that is a frame of it,
    else the frame nearest the still (`nearest_frame`: the artist's clips record none)."""
    if isinstance(recorded, int) and not isinstance(recorded, bool) and 0 <= recorded < frames.shape[0]:
        return recorded
    return nearest_frame(frames, still)


def nearest_frame(frames: np.ndarray, still: np.ndarray) -> int:
    """The index of the frame (T, H, W, 4) most like the still (any size; straight RGBA): how the
    conditioning frame is found when a clip does not record it."""
    h, w = frames.shape[1:3]
    small = (min(64, h), min(64, w))
    f = resize_premultiplied(premultiply(to_unit(frames)), small)
    s = resize_premultiplied(premultiply(to_unit(still[None])), small)[0]
    return int(np.argmin(np.abs(f - s[None]).mean(axis=(1, 2, 3))))


def alpha_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the pixels with alpha > SOLID (end exclusive), None when there are none."""
    rows, cols = np.flatnonzero((alpha > SOLID).any(1)), np.flatnonzero((alpha > SOLID).any(0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def basis_flows(basis: np.ndarray, cond: int = BASIS_COND) -> np.ndarray:
    """Premultiplied basis frames (T, h, w, 4) -> flows (T, h, w, 2) from the conditioning frame to each
    frame: the pixel at x of frame `cond` is at x + flow in frame t (zero at `cond`)."""
    flows = np.zeros((*basis.shape[:3], 2), np.float32)
    for t in range(basis.shape[0]):
        if t != cond:
            flows[t] = frame_flow(basis[cond], basis[t])
    return flows


def similarity_residual(flow: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity transform of the body's motion: flow (h, w, 2) and mask (h, w) ->
    (fitted (n, 2), residual (n, 2)) at the n body pixels. The model x' = [[a, -b], [b, a]] x + t is
    linear in (a, b, tx, ty), so one lstsq solves it."""
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean(), ys.mean()
    px, py = xs - cx, ys - cy  # centred: the fit is well conditioned
    d = flow[ys, xs]  # (n, 2) as (dx, dy)
    # Rows for dx: a*px - b*py + tx - px = dx -> [px, -py, 1, 0] . p = dx + px; for dy: [py, px, 0, 1] . p = dy + py
    ones, zeros = np.ones_like(px), np.zeros_like(px)
    a = np.concatenate([np.stack([px, -py, ones, zeros], 1), np.stack([py, px, zeros, ones], 1)])  # (2n, 4)
    b = np.concatenate([d[:, 0] + px, d[:, 1] + py])  # (2n,)
    p, *_ = np.linalg.lstsq(a.astype(np.float64), b.astype(np.float64), rcond=None)
    fitted = (a @ p - np.concatenate([px, py])).reshape(2, -1).T  # (2n,) -> (n, 2)
    return fitted, d - fitted


def speed_flows(frames: np.ndarray, wrap: bool) -> np.ndarray:
    """Flows (P, h, w, 2) between consecutive premultiplied frames (T, h, w, 4); with `wrap` the last
    frame to the first too (a whole loop)."""
    t = frames.shape[0]
    return np.stack([frame_flow(frames[i], frames[(i + 1) % t]) for i in range(t if wrap else t - 1)])


def profile(basis: np.ndarray, flows: np.ndarray | None = None, cond: int = BASIS_COND,
            wrap: bool = False) -> MotionProfile | None:
    """The motion profile of premultiplied frames (T, h, w, 4) (the basis second, or with `wrap` a whole
    loop); None when the conditioning frame is empty. `flows` (from the conditioning frame) may be given
    (the broken kinds reuse them)."""
    box = alpha_box(basis[cond, ..., 3])
    if box is None:
        return None
    y0, y1, x0, x1 = box
    diagonal = float(np.hypot(y1 - y0, x1 - x0))
    mask = basis[cond, ..., 3] > SOLID
    flows = basis_flows(basis, cond) if flows is None else flows
    others = [t for t in range(basis.shape[0]) if t != cond]
    mag = np.linalg.norm(flows[others], axis=-1) / diagonal  # (T-1, h, w)
    size = float(mag[:, mask].mean())
    speed = np.abs(speed_flows(basis, wrap)).mean(0) / diagonal  # (h, w, 2): mean |dx|, |dy| per step
    seen = (basis[..., 3] > SOLID).any(0)  # wherever the body is during the clip
    energy = []
    for c in range(2):
        e = cv2.GaussianBlur(np.where(seen, speed[..., c], 0).astype(np.float32), (0, 0), ENERGY_BLUR)
        energy.append(cv2.resize(e[y0:y1, x0:x1], (GRID, GRID), interpolation=cv2.INTER_AREA))
    grid_mask = cv2.resize(mask[y0:y1, x0:x1].astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA) > 0.5
    parts = None
    if size >= STILL_FLOOR and mask.sum() >= 8:
        total, residual = 0.0, 0.0
        for t in others:
            _, r = similarity_residual(flows[t], mask)
            residual += float(np.linalg.norm(r, axis=1).sum())
            total += float(np.linalg.norm(flows[t][mask], axis=1).sum())
        parts = residual / max(total, 1e-9)
    return MotionProfile(size, np.stack(energy), grid_mask, parts, diagonal)


def clip_profile(frames: np.ndarray, fps: float, cond: int) -> MotionProfile | None:
    """Straight RGBA frames (T, H, W, 4) at `fps` with conditioning index `cond` -> its motion profile."""
    return profile(to_basis(frames, fps, cond))


@dataclass
class Reference:
    """What a result is compared with: the artist's second around the still, and the artist's loop."""

    second: MotionProfile | None
    loop: MotionProfile | None


def reference_profile(frames: np.ndarray, fps: float, cond: int) -> Reference:
    """The real clip's profiles: its one second at 8 fps around `cond` and its whole loop from `cond`."""
    return Reference(profile(to_basis(frames, fps, cond)), profile(loop_basis(frames, fps, cond), cond=0, wrap=True))


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(np.float64)


def where_correlation(a: MotionProfile, b: MotionProfile) -> float | None:
    """Spearman correlation of two clips' energy maps (both axes) over the union of the two bodies; None
    when either is flat there (a still clip has no places of motion)."""
    union = a.mask | b.mask
    x, y = a.energy[:, union].ravel(), b.energy[:, union].ravel()  # (2, n) -> (2n,)
    if x.size < 6 or x.std() < 1e-9 or y.std() < 1e-9:
        return None
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def compare(result: MotionProfile | None, real: Reference) -> dict[str, float | None]:
    """The three raw values of a result's one-second profile against the real clip (None where undefined)."""
    values: dict[str, float | None] = {name: None for name in MOTION_CRITERIA}
    if result is None:
        return values
    if real.second is not None:
        values["motion_size"] = result.size / real.second.size if real.second.size > 1e-6 else None
        if result.parts is not None and real.second.parts is not None:
            values["motion_parts"] = result.parts - real.second.parts
    if real.loop is not None:
        values["motion_where"] = where_correlation(result, real.loop)
    return values
