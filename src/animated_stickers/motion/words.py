"""Measured motion words: what a sticker clip does, as a vocabulary the text encoder can learn (issue 12).

`describe_motion` registers every frame to the conditioning frame with OpenCV (a brute-force rotation
search on alpha + luma gives a similarity; Lucas-Kanade tracks corner points from there and a RANSAC
affine fit keeps the global motion robust to parts moving on their own), splits the affine map into
translation, rotation, scale, squash (aspect) and shear series, and measures the local motion left over
(tracked points' residual after the affine map) in five regions of the sticker's box: top, middle, bottom, left,
right thirds (eyes and mouth versus limbs). `motion_words` maps those numbers to VOCAB words, strongest
first; `motion_phrase` adds amplitude and speed adverbs; `named_motion` finds the word a prompt names.

Units: translations in fractions of the sticker's size (the longer side of its visible box), rotation
in degrees, scale/aspect in natural log, speed in cycles per second (turns per second for spinning).
Amplitudes are peak-to-peak ranges over the clip.
"""

from __future__ import annotations

import math
import random
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

WORK_SIZE = 96  # px: frames are registered at this canvas size
REGIONS = ("top", "middle", "bottom", "left", "right")  # thirds of the conditioning frame's visible box


@dataclass(frozen=True)
class Word:
    """One motion word: phrase variants, the measured signature it needs, and its adverb thresholds."""

    variants: tuple[str, ...]  # ways to say it; the first is the plain word
    signature: str  # the measurement that names it (documentation; the rules are in `_scores`)
    unit: str = ""  # the measured amplitude (peak-to-peak) the adverbs use
    gentle: float = 0.0  # amplitude below this: "gently"
    wild: float = math.inf  # amplitude above this: "wildly"
    slow_hz: float = 0.6  # cycles per second below this: "slowly"
    fast_hz: float = 1.6  # above this: "quickly"


VOCAB: OrderedDict[str, Word] = OrderedDict([
    ("still", Word(("still", "not moving", "staying still"), "no global or local motion")),
    ("bouncing", Word(("bouncing", "bouncing up and down", "bouncing like a ball"),
                      "vertical translation, rarely resting at the lowest point", "ty range", 0.08, 0.15)),
    ("hopping", Word(("hopping", "jumping up and down", "hopping up and down"),
                     "vertical translation resting at the lowest point much of the time", "ty range", 0.08, 0.15)),
    ("sliding", Word(("sliding side to side", "sliding left and right", "moving from side to side"),
                     "horizontal translation", "tx range", 0.15, 0.3)),
    ("swaying", Word(("swaying", "swaying from side to side", "leaning from side to side"),
                     "top moves sideways while the bottom stays (horizontal shear / bend)", "shear range",
                     0.12, 0.35)),
    ("spinning", Word(("spinning", "spinning around", "turning around in a circle"),
                      "rotation through more than half a turn", "turns", 0.0, math.inf, 0.6, 0.9)),
    ("rocking", Word(("rocking", "rocking back and forth", "tilting from side to side"),
                     "rotation back and forth", "rotation range (deg)", 15.0, 40.0)),
    ("pulsing", Word(("pulsing", "pulsing bigger and smaller", "beating like a heart", "growing and shrinking"),
                     "uniform scale change", "log scale range", 0.08, 0.25)),
    ("shaking", Word(("shaking", "trembling", "shaking nervously"),
                     "small fast jitter (translation or rotation, many reversals per second)", "jitter range",
                     0.04, 0.1, 2.0, 6.0)),
    ("wobbling", Word(("wobbling", "squashing and stretching", "jiggling like jelly"),
                      "squash and stretch: the aspect ratio changes", "log aspect range", 0.12, 0.35)),
    ("blinking", Word(("blinking", "blinking its eyes"),
                      "brief local motion in the top third, converging (not a coherent shift)", "local range",
                      0.03, 0.1)),
    ("waving", Word(("waving", "waving its arm", "waving hello"),
                    "local motion on one side (left or right third) only", "local range", 0.03, 0.1)),
    ("nodding", Word(("nodding", "nodding its head", "nodding yes"),
                     "coherent vertical local motion of the top third", "local range", 0.03, 0.1)),
    ("floating", Word(("floating", "floating gently up and down", "drifting in the air"),
                      "slow smooth vertical drift", "ty range", 0.07, 0.14, 0.4, 1.0)),
])

# Word order within a phrase: where the direction words go ("bouncing quickly up and down").
_DETAIL = {"bouncing": "up and down", "hopping": "up and down", "sliding": "from side to side",
           "swaying": "from side to side", "spinning": "around", "rocking": "back and forth",
           "pulsing": "bigger and smaller", "floating": "up and down"}


def amplitude_adverb(word: str, amplitude: float | None) -> str:
    """'gently', '' or 'wildly' for an amplitude in the word's unit (VOCAB thresholds)."""
    w = VOCAB[word]
    if amplitude is None or not w.unit or w.unit == "turns":
        return ""
    return "gently" if amplitude < w.gentle else "wildly" if amplitude > w.wild else ""


def speed_adverb(word: str, hz: float | None) -> str:
    """'slowly', '' or 'quickly' for a frequency in cycles (turns) per second."""
    if hz is None or word == "still":
        return ""
    w = VOCAB[word]
    return "slowly" if hz < w.slow_hz else "quickly" if hz > w.fast_hz else ""


def word_phrase(word: str, amplitude: float | None = None, hz: float | None = None,
                rng: random.Random | None = None) -> str:
    """One word with its adverbs: 'gently bouncing slowly up and down' (a random variant with `rng`)."""
    if word == "still":
        return rng.choice(VOCAB[word].variants) if rng else "still"
    amp, speed = amplitude_adverb(word, amplitude), speed_adverb(word, hz)
    variant = rng.choice(VOCAB[word].variants) if rng else word
    head, _, tail = variant.partition(" ")
    if not rng and word in _DETAIL:
        tail = _DETAIL[word]
    return " ".join(p for p in (amp, head, speed, tail) if p)


def join_phrases(parts: list[str], rng: random.Random | None = None) -> str:
    """'a', 'a while b', 'a and b while c'."""
    if len(parts) <= 1:
        return parts[0] if parts else "still"
    joiner = rng.choice([" while ", " and "]) if rng else " while "
    return ", ".join(parts[:-1]) + joiner + parts[-1]


# ---- measurement ------------------------------------------------------------------------------------


@dataclass
class MotionDescription:
    """What a clip does relative to its conditioning frame. Series have one value per frame.

    tx, ty: translation of the motion's anchor (fractions of the sticker size; y grows downwards);
    rot: rotation (degrees, unwrapped so a spin accumulates); scale: log scale; aspect: log(sy/sx);
    shear: horizontal shear (top displacement per height); local: residual flow magnitude per region
    after removing the affine map (fractions of the sticker size); summary: per-series range, speed and
    the dominant period (frames), and the region figures the words are chosen from."""

    fps: float
    cond_index: int
    num_frames: int
    tx: list[float] = field(default_factory=list)
    ty: list[float] = field(default_factory=list)
    rot: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    aspect: list[float] = field(default_factory=list)
    shear: list[float] = field(default_factory=list)
    local: dict[str, list[float]] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)
    empty: bool = False  # the conditioning frame is fully transparent

    def to_dict(self) -> dict:
        """JSON-safe: plain floats rounded to 4 decimals."""
        d = asdict(self)
        for k in ("tx", "ty", "rot", "scale", "aspect", "shear"):
            d[k] = [round(float(v), 4) for v in d[k]]
        d["local"] = {r: [round(float(v), 4) for v in vs] for r, vs in d["local"].items()}
        d["summary"] = {k: round(float(v), 4) for k, v in d["summary"].items()}
        d["fps"] = round(float(d["fps"]), 4)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MotionDescription:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


SERIES = ("tx", "ty", "rot", "scale", "aspect", "shear")


def _prepare(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 4) uint8 straight RGBA -> alpha and registration features (T, S, S) float32 at WORK_SIZE
    (longer side; the other is padded so the canvas is square). The feature is alpha plus premultiplied
    luma: the silhouette carries flat stickers, the luma carries eyes and mouths."""
    import cv2

    t, h, w = frames.shape[:3]
    s = WORK_SIZE / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    x = frames.astype(np.float32) / 255.0
    x[..., :3] *= x[..., 3:]  # premultiply before resampling: no dark fringes
    out = np.zeros((t, WORK_SIZE, WORK_SIZE, 4), np.float32)
    oy, ox = (WORK_SIZE - nh) // 2, (WORK_SIZE - nw) // 2
    for i in range(t):
        out[i, oy:oy + nh, ox:ox + nw] = cv2.resize(x[i], (nw, nh), interpolation=cv2.INTER_AREA)
    alpha = out[..., 3]
    luma = out[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    feat = np.stack([cv2.GaussianBlur(0.5 * a + 0.5 * lu, (0, 0), 1.0) for a, lu in zip(alpha, luma)])
    return alpha, feat


def _centroid(alpha: np.ndarray) -> tuple[float, float, float]:
    """(x, y, area) of an alpha image (pixel centres at integer + 0.5 are not needed: warps use the same)."""
    m = alpha.sum()
    if m < 1e-3:
        return alpha.shape[1] / 2, alpha.shape[0] / 2, 0.0
    ys, xs = np.mgrid[:alpha.shape[0], :alpha.shape[1]]
    return float((xs * alpha).sum() / m), float((ys * alpha).sum() / m), float(m)


def _similarity(c_from, c_to, scale: float, deg: float) -> np.ndarray:
    """2x3 map x_to = c_to + scale * R(deg) (x - c_from)."""
    th = math.radians(deg)
    a = scale * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    return np.hstack([a, (np.array(c_to) - a @ np.array(c_from))[:, None]]).astype(np.float32)


def _register(f_cond, f_t, a_cond, a_t, prev_deg: float, points: np.ndarray):
    """The affine 2x3 map M from conditioning-frame coordinates to frame t, and where the tracked
    `points` (N, 2) of the conditioning frame went ((N, 2), NaN where lost).

    Centroid and area give translation and scale, a search over rotations (full circle plus a window
    around the previous frame's angle) gives the angle; Lucas-Kanade tracks the points from there and a
    RANSAC affine fit keeps the global motion robust to the parts that move on their own (an arm, eyes)."""
    import cv2

    cx, cy, area = _centroid(a_cond)
    tx, ty, area_t = _centroid(a_t)
    s = math.sqrt(area_t / area) if area > 0 and area_t > 0 else 1.0
    # The rotation search runs at half size (4x fewer pixels).
    half_c, half_t = cv2.resize(f_cond, None, fx=0.5, fy=0.5), cv2.resize(f_t, None, fx=0.5, fy=0.5)

    def cost(deg):
        m = _similarity((cx, cy), (tx, ty), s, deg)
        m[:, 2] *= 0.5  # the same map in half-size pixels
        back = cv2.warpAffine(half_t, m, half_c.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        return float(((back - half_c) ** 2).sum())

    angles = list(range(-180, 180, 30)) + [prev_deg + d for d in (-20, -10, 0, 10, 20)] + [0.0]
    best = min(angles, key=cost)
    best = min([best + d for d in (-6, -3, 0, 3, 6)], key=cost)
    m0 = _similarity((cx, cy), (tx, ty), s, best)
    lost = np.full_like(points, np.nan)
    if len(points) < 6:
        return m0, lost
    to8 = lambda f: np.clip(f * 255, 0, 255).astype(np.uint8)  # noqa: E731
    # Track in conditioning-frame coordinates (frame t warped back by the search's similarity): what is
    # left is small, which Lucas-Kanade handles even when the sticker has turned a long way.
    back = cv2.warpAffine(f_t, m0, f_cond.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    lk = dict(winSize=(11, 11), maxLevel=2)
    found, ok, _ = cv2.calcOpticalFlowPyrLK(to8(f_cond), to8(back), points.astype(np.float32), None, **lk)
    # A track that cannot be followed back to the conditioning frame is lost, not local motion (flat
    # stickers have few corners; one lost corner read a spin as a wave). Only the backward status counts:
    # a round-trip distance bar (1-3 px) also dropped good edge points on one side of a squash, which then
    # read as a wave.
    _, ok_back, _ = cv2.calcOpticalFlowPyrLK(to8(back), to8(f_cond), found, None, **lk)
    ok = ok.ravel().astype(bool) & ok_back.ravel().astype(bool)
    if ok.sum() < 6:
        return m0, lost
    moved = (found @ m0[:, :2].T + m0[:, 2]).astype(np.float32)  # back to frame-t coordinates
    m, inliers = cv2.estimateAffine2D(points[ok], moved[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0)
    if m is None or inliers.sum() < 6:
        m = m0
    lost[ok] = moved[ok]
    return m.astype(np.float32), lost


def _decompose(m: np.ndarray) -> tuple[float, float, float, float]:
    """Rotation (deg), log scale, log aspect (sy/sx) and shear of the 2x2 part A = R(rot) [[sx, k], [0, sy]]."""
    a = m[:, :2].astype(np.float64)
    rot = math.atan2(a[1, 0], a[0, 0])
    c, s = math.cos(rot), math.sin(rot)
    u = np.array([[c, s], [-s, c]]) @ a  # upper triangular: [[sx, k], [~0, sy]]
    sx, sy = max(abs(u[0, 0]), 1e-6), max(abs(u[1, 1]), 1e-6)
    return math.degrees(rot), 0.5 * math.log(sx * sy), math.log(sy / sx), float(u[0, 1] / sy)


def _region_masks(alpha: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the thirds of the visible box of an alpha image (S, S)."""
    ys, xs = np.nonzero(alpha > 0.5)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    yy, xx = np.mgrid[:alpha.shape[0], :alpha.shape[1]]
    v = (yy - top) / max(bottom - top, 1)
    h = (xx - left) / max(right - left, 1)
    inside = (alpha > 0.1) & (v >= 0) & (v < 1) & (h >= 0) & (h < 1)
    return {"top": inside & (v < 1 / 3), "middle": inside & (v >= 1 / 3) & (v < 2 / 3),
            "bottom": inside & (v >= 2 / 3), "left": inside & (h < 1 / 3), "right": inside & (h >= 2 / 3)}


def _speed_hz(x: np.ndarray, fps: float, loop: bool = True) -> float:
    """Cycles per second of a series: its travel divided by twice its range (exact for any periodic
    waveform with one up and one down per cycle, and usable on clips shorter than a cycle)."""
    steps = np.abs(np.diff(np.concatenate([x, x[:1]]) if loop else x))
    rng = float(x.max() - x.min())
    if rng < 1e-9 or len(x) < 2:
        return 0.0
    return float(steps.sum() / (2 * rng) * fps / (len(steps)))


def _period_frames(x: np.ndarray) -> float:
    """The dominant period (frames) of a series by FFT (0 when flat)."""
    x = np.asarray(x, np.float64) - np.mean(x)
    if len(x) < 3 or np.abs(x).max() < 1e-9:
        return 0.0
    spec = np.abs(np.fft.rfft(x))
    k = int(np.argmax(spec[1:]) + 1)
    return len(x) / k


def describe_motion(frames: np.ndarray, fps: float, cond_index: int) -> MotionDescription:
    """Measure the motion of a clip (T, H, W, 4) uint8 straight RGBA relative to frame `cond_index`."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 4 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGBA frames (T, H, W, 4), got {frames.dtype} {frames.shape}")
    n = frames.shape[0]
    if not 0 <= cond_index < n:
        raise ValueError(f"cond_index {cond_index}: expected 0..{n - 1}")
    desc = MotionDescription(fps=float(fps), cond_index=int(cond_index), num_frames=n)
    alpha, feat = _prepare(frames)
    a_c, f_c = alpha[cond_index], feat[cond_index]
    if (a_c > 0.5).sum() < 4:
        desc.empty = True
        return desc
    ys, xs = np.nonzero(a_c > 0.5)
    size = float(max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))  # the sticker's size in px
    cx, cy, _ = _centroid(a_c)
    anchors = {"centre": (cx, cy), "bottom": (cx, float(ys.max() + 1)), "top": (cx, float(ys.min()))}
    masks = _region_masks(a_c)
    f_c8 = np.clip(f_c * 255, 0, 255).astype(np.uint8)
    found = cv2.goodFeaturesToTrack(f_c8, 300, 0.005, 3, mask=(a_c > 0.1).astype(np.uint8))
    points = np.zeros((0, 2), np.float32) if found is None else found.reshape(-1, 2)  # (N, 2) x, y

    # Register frames outwards from the conditioning frame so each starts from its neighbour's angle.
    maps: dict[int, np.ndarray] = {cond_index: _similarity((cx, cy), (cx, cy), 1.0, 0.0)}
    tracked: dict[int, np.ndarray] = {cond_index: points.copy()}
    parts: dict[int, tuple] = {cond_index: (0.0, 0.0, 0.0, 0.0)}
    order = [i for d in range(1, n) for i in (cond_index + d, cond_index - d) if 0 <= i < n]
    for i in order:
        prev = i - 1 if i > cond_index else i + 1
        maps[i], tracked[i] = _register(f_c, feat[i], a_c, alpha[i], parts[prev][0], points)
        parts[i] = _decompose(maps[i])
    rot = np.unwrap(np.radians([parts[i][0] for i in range(n)]))
    rot = np.degrees(rot - rot[cond_index])
    # The point that moves least under all the maps (a spin's or rock's pivot), kept inside the box.
    lhs = np.concatenate([maps[i][:, :2] - np.eye(2) for i in range(n)])  # (2T, 2)
    rhs = -np.concatenate([maps[i][:, 2] for i in range(n)])
    if np.abs(lhs).max() > 1e-3:
        q = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        anchors["pivot"] = (float(np.clip(q[0], xs.min(), xs.max())), float(np.clip(q[1], ys.min(), ys.max())))
    moved = {k: np.array([maps[i][:, :2] @ np.array(p) + maps[i][:, 2] - np.array(p) for i in range(n)]) / size
             for k, p in anchors.items()}  # (T, 2) displacement of each anchor
    anchor = min(moved, key=lambda k: float(np.ptp(moved[k][:, 0]) + np.ptp(moved[k][:, 1])))
    desc.tx, desc.ty = moved[anchor][:, 0].tolist(), moved[anchor][:, 1].tolist()
    desc.rot = rot.tolist()
    desc.scale, desc.aspect, desc.shear = ([parts[i][j] for i in range(n)] for j in (1, 2, 3))

    # Local motion: where tracked points went beyond the affine map, per region of the conditioning
    # frame; a high quantile, since an arm or the eyes are a small part of their third.
    px, py = np.clip(points.round().astype(int), 0, WORK_SIZE - 1).T if len(points) else ([], [])
    region_of = {r: mk[py, px] if len(points) else np.zeros(0, bool) for r, mk in masks.items()}
    local = {r: [] for r in REGIONS}
    coherent = {r: [] for r in REGIONS}
    for i in range(n):
        res = (tracked[i] - (points @ maps[i][:, :2].T + maps[i][:, 2])) / size  # (N, 2), NaN when lost
        for r in REGIONS:
            v = res[region_of[r] & ~np.isnan(res[:, 0])]
            mag = np.linalg.norm(v, axis=1)
            local[r].append(float(np.quantile(mag, 0.9)) if len(v) >= 3 else 0.0)
            coherent[r].append(float(np.linalg.norm(v.mean(0)) / max(mag.mean(), 1e-9)) if len(v) >= 3 else 0.0)
    desc.local = local
    desc.summary = _summarise(desc, coherent, anchor)
    return desc


def _summarise(desc: MotionDescription, coherent: dict[str, list[float]], anchor: str) -> dict[str, float]:
    """Ranges, speeds and periods of every series, and the region figures for the local words."""
    fps, out = desc.fps, {"anchor_" + anchor: 1.0}
    for k in SERIES:
        x = np.asarray(getattr(desc, k), np.float64)
        out[f"{k}_range"] = float(np.ptp(x))
        out[f"{k}_hz"] = _speed_hz(x, fps)
        out[f"{k}_period"] = _period_frames(x)
    ty = np.asarray(desc.ty)
    if np.ptp(ty) > 0:  # share of frames within 20% of the range from the lowest point (y grows down)
        out["ty_ground"] = float((ty >= ty.max() - 0.2 * np.ptp(ty)).mean())
    rot = np.asarray(desc.rot)
    out["turns_per_s"] = float(np.abs(np.diff(rot)).sum() / 360 * fps / max(len(rot) - 1, 1))
    for r in REGIONS:
        mag = np.asarray(desc.local[r])
        out[f"{r}_peak"] = float(np.quantile(mag, 0.9))
        out[f"{r}_hz"] = _speed_hz(mag, fps) / 2  # magnitude peaks twice per back-and-forth cycle
        out[f"{r}_coherence"] = float(np.average(coherent[r], weights=mag + 1e-9))
        out[f"{r}_duty"] = float((mag > 0.5 * mag.max()).mean()) if mag.max() > 0 else 0.0
    return out


# ---- words ------------------------------------------------------------------------------------------

# Presence thresholds (peak-to-peak, the units of the summary): below these a series counts as still.
# Calibrated on procedural clips (tests/test_motion_words.py); registration noise on rigid motion stays
# under about a third of each.
PRESENT = {"ty": 0.05, "tx": 0.06, "rot": 8.0, "spin": 150.0, "scale": 0.06, "aspect": 0.14, "shear": 0.12,
           "nod": 0.06, "local": 0.03}
SHAKE_HZ = 2.2  # a translation or rotation reversing faster than this is shaking


def _scores(desc: MotionDescription) -> dict[str, tuple[float, float, float]]:
    """word -> (strength (>= 1 when present), amplitude in the word's unit, speed in Hz)."""
    s = desc.summary
    if desc.empty or not s:
        return {}
    out: dict[str, tuple[float, float, float]] = {}
    # A spin about an off-centre pivot moves every anchor: then translation words are not trusted.
    translate_ok = s["rot_range"] < PRESENT["spin"] or "anchor_centre" in s or "anchor_pivot" in s
    lsx = np.asarray(desc.scale) - np.asarray(desc.aspect) / 2  # log width change
    lsy = np.asarray(desc.scale) + np.asarray(desc.aspect) / 2  # log height change
    nod_like = np.ptp(lsy) >= PRESENT["nod"] and np.ptp(lsx) < 0.35 * np.ptp(lsy) and s["ty_range"] < 0.1
    if s["rot_range"] >= PRESENT["spin"]:
        out["spinning"] = (s["rot_range"] / PRESENT["spin"] * 2, s["rot_range"], s["turns_per_s"])
    elif s["rot_range"] >= PRESENT["rot"]:
        w = "shaking" if s["rot_hz"] > SHAKE_HZ else "rocking"
        out[w] = (s["rot_range"] / PRESENT["rot"], s["rot_range"], s["rot_hz"])
    if s["tx_range"] >= PRESENT["tx"] * (0.5 if s["tx_hz"] > SHAKE_HZ else 1) and translate_ok:
        w = "shaking" if s["tx_hz"] > SHAKE_HZ else "sliding"
        out[w] = max(out.get(w, (0, 0, 0)), (s["tx_range"] / PRESENT["tx"], s["tx_range"], s["tx_hz"]))
    if s["ty_range"] >= PRESENT["ty"] and translate_ok:
        if s["ty_hz"] > SHAKE_HZ:
            w = "shaking"
        elif s.get("ty_ground", 0) >= 0.45:
            w = "hopping"
        elif s["ty_hz"] <= 0.75:
            w = "floating"
        else:
            w = "bouncing"
        out[w] = max(out.get(w, (0, 0, 0)), (s["ty_range"] / PRESENT["ty"], s["ty_range"], s["ty_hz"]))
    if nod_like:
        out["nodding"] = (np.ptp(lsy) / PRESENT["nod"], float(np.ptp(lsy)), s["aspect_hz"])
    elif s["aspect_range"] >= PRESENT["aspect"]:
        out["wobbling"] = (s["aspect_range"] / PRESENT["aspect"], s["aspect_range"], s["aspect_hz"])
    elif s["scale_range"] >= PRESENT["scale"]:
        out["pulsing"] = (s["scale_range"] / PRESENT["scale"], s["scale_range"], s["scale_hz"])
    if s["shear_range"] >= PRESENT["shear"]:
        out["swaying"] = (s["shear_range"] / PRESENT["shear"], s["shear_range"], s["shear_hz"])
    side_hi, side_lo = max(s["left_peak"], s["right_peak"]), min(s["left_peak"], s["right_peak"])
    if side_hi >= PRESENT["local"] and side_hi >= 2 * side_lo:
        side = "left" if s["left_peak"] >= s["right_peak"] else "right"
        out["waving"] = (side_hi / PRESENT["local"], side_hi, s[f"{side}_hz"])
    top = s["top_peak"]
    if top >= PRESENT["local"] / 3 and top >= 1.5 * s["bottom_peak"] and s["top_duty"] <= 0.35 and not out:
        out["blinking"] = (top / (PRESENT["local"] / 3), top, s["top_hz"])
    return out


def motion_words(desc: MotionDescription) -> list[str]:
    """The VOCAB words that apply, strongest first (['still'] when nothing moves)."""
    scores = _scores(desc)
    return sorted(scores, key=lambda w: -scores[w][0]) or ["still"]


def dominant_motion(desc: MotionDescription) -> str:
    """The one strongest VOCAB word ('still' when nothing moves)."""
    return motion_words(desc)[0]


def motion_phrase(desc: MotionDescription, rng: random.Random | None = None, max_words: int = 2) -> str:
    """'bouncing quickly up and down while spinning slowly': the strongest words with their adverbs."""
    scores = _scores(desc)
    words = motion_words(desc)[:max_words]
    return join_phrases([word_phrase(w, *scores[w][1:], rng=rng) if w in scores else word_phrase(w, rng=rng)
                         for w in words], rng)


# Phrases a prompt may use for each word (longest first when matching; plain word stems included).
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "still": ("not moving", "standing still", "staying still", "motionless", "still"),
    "bouncing": ("bouncing", "bounces", "bounce", "bouncy", "up and down"),
    "hopping": ("hopping", "hops", "hop", "jumping", "jumps", "jump", "leaping", "leap"),
    "sliding": ("side to side", "left and right", "left to right", "sliding", "slides", "slide", "gliding",
                "moving sideways"),
    "swaying": ("swaying", "sways", "sway", "leaning", "bending"),
    "spinning": ("turning around", "spinning", "spins", "spin", "rotating", "rotates", "rotate", "twirling",
                 "full circle", "in a circle", "whirling"),
    "rocking": ("rocking", "rocks", "rock back", "tilting", "tilts", "tilt", "back and forth", "see-saw"),
    "pulsing": ("growing and shrinking", "bigger and smaller", "pulsing", "pulses", "pulse", "pulsating",
                "beating", "beats", "heartbeat", "throbbing", "breathing"),
    "shaking": ("shaking", "shakes", "shake", "trembling", "trembles", "shivering", "jittering", "vibrating"),
    "wobbling": ("squash and stretch", "squashing and stretching", "squashing", "stretching", "wobbling",
                 "wobbles", "wobble", "jiggling", "jelly", "squishing"),
    "blinking": ("blinking", "blinks", "blink", "winking", "winks", "wink"),
    "waving": ("waving", "waves", "wave", "saying hello", "saying hi", "greeting"),
    "nodding": ("nodding", "nods", "nod", "bowing"),
    "floating": ("floating", "floats", "float", "drifting", "hovering", "flying", "levitating"),
}
_PATTERNS = sorted(((p, w) for w, ps in _SYNONYMS.items() for p in ps), key=lambda pw: -len(pw[0]))


# Direction phrases alone name a motion only when the prompt names no motion word ('hopping up and down'
# is hopping, not hopping and bouncing).
_WEAK = {"up and down", "side to side", "left and right", "left to right", "back and forth", "bigger and smaller"}
_AMPLITUDE = {"gentle": ("gently", "gentle", "slightly", "softly", "subtly", "lightly", "a little", "a bit"),
              "wild": ("wildly", "wild", "strongly", "vigorously", "energetically", "a lot", "crazily", "hard")}
_SPEED = {"slow": ("slowly", "slow", "lazily", "calmly", "leisurely"),
          "fast": ("quickly", "quick", "fast", "rapidly", "frantically", "speedily")}


@dataclass(frozen=True)
class MotionRequest:
    """What a prompt asks of the motion: VOCAB words in the order named, and adverb levels
    (amplitude 'gentle' | '' | 'wild', speed 'slow' | '' | 'fast')."""

    words: tuple[str, ...]
    amplitude: str = ""
    speed: str = ""


def _normalised(prompt: str) -> str:
    return " " + re.sub(r"[^a-z\- ]+", " ", prompt.lower()) + " "


def _whole(phrase: str) -> str:
    """A regex for `phrase` as whole words of a normalised prompt."""
    return r"(?<![a-z])" + re.escape(phrase) + r"(?![a-z])"


def _motion_spans(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, phrase, word) of every motion phrase in a normalised text, longer phrases first, no
    overlaps."""
    taken = [False] * len(text)
    spans = []
    for phrase, word in _PATTERNS:  # longest first
        for m in re.finditer(_whole(phrase), text):
            if any(taken[m.start():m.end()]):
                continue
            taken[m.start():m.end()] = [True] * (m.end() - m.start())
            spans.append((m.start(), m.end(), phrase, word))
    return spans


def without_motion_words(text: str) -> str:
    """`text` with the motion phrases it names taken out ('man bouncing ball' -> 'man ball'): a subject
    name that itself names a motion would otherwise add that motion to every prompt made from it."""
    norm = _normalised(text)
    spans = _motion_spans(norm)
    if not spans:
        return text
    keep = [True] * len(norm)
    for start, end, _, _ in spans:
        keep[start:end] = [False] * (end - start)
    out = " ".join("".join(c for c, k in zip(norm, keep) if k).split())
    return out or text


def prompt_request(prompt: str) -> MotionRequest:
    """Every motion word a prompt names (longer phrases win, no overlaps) with its adverbs:
    'bouncing quickly while spinning' -> (bouncing, spinning), speed 'fast'."""
    text = _normalised(prompt)
    strong, weak = [], []
    for start, _, phrase, word in _motion_spans(text):
        (weak if phrase in _WEAK else strong).append((start, word))
    hits = sorted(strong) or sorted(weak)
    words = tuple(dict.fromkeys(w for _, w in hits))

    def level(table: dict[str, tuple[str, ...]]) -> str:
        found = [(m.start(), key) for key, ps in table.items() for p in ps if (m := re.search(_whole(p), text))]
        return min(found)[1] if found else ""

    return MotionRequest(words, level(_AMPLITUDE), level(_SPEED))


def named_motion(prompt: str) -> str | None:
    """The first VOCAB word a prompt names, None when none.
    'jumping up and down' -> hopping; 'rotating' -> spinning; 'left and right' -> sliding."""
    words = prompt_request(prompt).words
    return words[0] if words else None
