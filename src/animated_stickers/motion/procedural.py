"""Procedural animations of static stickers: weakly in-domain motion with exact motion captions (paper 2.2
"short animations" stage; issue 12).

Each motion is one or more components (bounce, hop, slide, sway, spin, rock, pulse, shake, squash/wobble/
jelly, blink, wave, nod, float), each a looping family of image warps with random amplitude and speed.
Every waveform is periodic in the phase phi = 2*pi*t/T with integer harmonics, so frame T equals frame 0
and the loop is seamless. Captions come from the transform itself: the VOCAB words of the components
(motion/words.py) with amplitude and speed adverbs from the actual parameters.

Warping is done by inverse mapping with bilinear sampling on premultiplied RGBA (no dark fringes).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from ..rgba import fit_box, premultiply, to_uint8, unpremultiply
from .words import VOCAB, join_phrases, word_phrase

FPS = 24.0
NUM_FRAMES = 48  # a 2 s loop at 24 fps: long enough for 8-frame clips at 4 fps (spacing 6)
FILL = 0.72  # the sticker is shrunk to this share of the canvas, leaving room to move


@dataclass(frozen=True)
class Motion:
    """A named motion: its plain caption phrase, kind and the VOCAB words it shows (strongest first)."""

    name: str
    phrase: str
    kind: str  # 'affine' (rigid / global) or 'warp' (partial / non-rigid)
    words: tuple[str, ...] = ()


_SINGLE = [  # name, phrase, kind, VOCAB word
    ("squash", "squashing and stretching", "affine", "wobbling"),
    ("bounce", "bouncing up and down", "affine", "bouncing"),
    ("hop", "hopping up and down", "affine", "hopping"),
    ("slide", "sliding from side to side", "affine", "sliding"),
    ("wobble", "wobbling", "affine", "wobbling"),
    ("rock", "rocking back and forth", "affine", "rocking"),
    ("spin", "spinning around", "affine", "spinning"),
    ("pulse", "pulsing like a heartbeat", "affine", "pulsing"),
    ("shake", "shaking", "affine", "shaking"),
    ("float", "floating gently up and down", "affine", "floating"),
    ("wave", "waving", "warp", "waving"),
    ("sway", "swaying its top from side to side", "warp", "swaying"),
    ("jelly", "jiggling like jelly", "warp", "wobbling"),
    ("nod", "nodding", "warp", "nodding"),
    ("blink", "blinking", "warp", "blinking"),
]
COMBOS = [("bounce", "spin"), ("hop", "spin"), ("float", "spin"), ("slide", "spin"), ("bounce", "pulse"),
          ("float", "blink"), ("rock", "blink"), ("sway", "blink"), ("hop", "wave"), ("slide", "bounce"),
          ("pulse", "rock"), ("squash", "bounce"), ("float", "wave"), ("spin", "pulse")]

MOTIONS: dict[str, Motion] = {n: Motion(n, p, k, (w,)) for n, p, k, w in _SINGLE}
MOTIONS.update({
    f"{a}+{b}": Motion(f"{a}+{b}", f"{MOTIONS[a].phrase} and {MOTIONS[b].phrase}",
                       "warp" if "warp" in (MOTIONS[a].kind, MOTIONS[b].kind) else "affine",
                       MOTIONS[a].words + MOTIONS[b].words)
    for a, b in COMBOS})


def procedural_motion_names(combos: bool = True) -> list[str]:
    """Every procedural motion name ('bounce', ..., 'bounce+spin' combinations when `combos`)."""
    return [n for n in MOTIONS if combos or "+" not in n]


def motion_words_of(motion: str) -> list[str]:
    """The VOCAB words a procedural motion shows, strongest first ('bounce+spin' -> bouncing, spinning)."""
    _check(motion)
    return list(MOTIONS[motion].words)


def _check(motion: str) -> None:
    if motion not in MOTIONS:
        raise ValueError(f"motion '{motion}': expected one of {', '.join(MOTIONS)}")


def sample_bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """img (H, W, C) float sampled at float pixel coordinates (h, w); outside the image is zero."""
    h, w = img.shape[:2]
    padded = np.zeros((h + 2, w + 2, img.shape[2]), img.dtype)
    padded[1:-1, 1:-1] = img
    xs = np.clip(xs + 1.0, 0.0, w + 1.0 - 1e-3)
    ys = np.clip(ys + 1.0, 0.0, h + 1.0 - 1e-3)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    x1, y1 = np.minimum(x0 + 1, w + 1), np.minimum(y0 + 1, h + 1)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    top = padded[y0, x0] * (1 - fx) + padded[y0, x1] * fx
    bottom = padded[y1, x0] * (1 - fx) + padded[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def visible_crop(rgba: np.ndarray) -> Image.Image:
    """The still (H, W, 4) uint8 cropped to its visible box (alpha > 8), so FILL measures the sticker."""
    ys, xs = np.nonzero(rgba[..., 3] > 8)
    if len(xs) == 0:
        raise ValueError("the still is fully transparent: nothing to animate")
    return Image.fromarray(np.ascontiguousarray(rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]), "RGBA")


def fit_on_canvas(crop: Image.Image, size: int) -> np.ndarray:
    """The crop centred on a transparent size x size canvas (rgba.fit_box geometry), long side FILL x size.

    Pillow's own RGBA Lanczos (it premultiplies inside), not rgba.resize_image: the motion-word estimator's
    borderline calls on the test face (squash, bounce+pulse in tests/test_motion_words.py) flip with the
    latter's float filtering and alpha snapping, though the canvases differ by < 0.3/255 on average."""
    left, top, nw, nh = fit_box(crop.size, (size, size), FILL)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(crop.resize((nw, nh), Image.Resampling.LANCZOS), (left, top))
    return np.asarray(canvas)


# ---- components ------------------------------------------------------------------------------------

InverseMap = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Component:
    """One motion component with its drawn parameters: `amp` in the component's own unit, `k` the cycles
    per loop of its main waveform, `sign` a direction (spin / side)."""

    name: str
    amp: float
    k: int
    sign: int = 1
    rest: bool = False  # relative to phase 0: the shape at rest is the sticker itself (a bounce lands unsquashed)

    @property
    def word(self) -> str:
        return MOTIONS[self.name].words[0]


# name -> (amplitude range, cycles-per-loop choices). Amplitudes: translations and shears in sticker sizes,
# angles in degrees, scale and aspect as log ranges, local warps as a share of the sticker size.
_PARAMS: dict[str, tuple[tuple[float, float], tuple[int, ...]]] = {
    "squash": ((0.12, 0.45), (1, 2, 3)), "bounce": ((0.06, 0.18), (1, 2)), "hop": ((0.06, 0.18), (1, 2, 3)),
    "slide": ((0.12, 0.36), (1, 2, 3)), "wobble": ((0.12, 0.45), (2, 3, 4)), "rock": ((10.0, 50.0), (1, 2, 3)),
    "spin": ((1.0, 1.0), (1, 2)), "pulse": ((0.08, 0.3), (1, 2, 3)), "shake": ((0.03, 0.12), (8, 10)),
    "float": ((0.05, 0.16), (1,)), "wave": ((0.15, 0.35), (2, 3, 4)), "sway": ((0.1, 0.4), (1, 2)),
    "jelly": ((0.12, 0.4), (2, 3)), "nod": ((0.06, 0.16), (1, 2, 3)), "blink": ((0.6, 1.2), (1, 2)),
}


def draw_components(motion: str, seed: int = 0) -> list[Component]:
    """The components of `motion` with their parameters, drawn reproducibly from (seed, motion)."""
    _check(motion)
    rng = random.Random(f"{seed}:{motion}")
    out = []
    for name in motion.split("+"):
        (lo, hi), ks = _PARAMS[name]
        out.append(Component(name, rng.uniform(lo, hi), rng.choice(ks), rng.choice([-1, 1])))
    return out


def _waveform(c: Component, p: float) -> dict[str, float]:
    """The global transform of an affine component at phase p: translation (sticker sizes), rotation
    (degrees), log scale and log aspect (sy/sx)."""
    a, k, s = c.amp, c.k, c.sign
    if c.name == "bounce":  # a ball: up in arcs, a short squash at each contact
        contact = max(0.0, math.cos(2 * k * p)) ** 8
        return {"ty": -a * abs(math.sin(k * p)), "aspect": -0.1 * contact}
    if c.name == "hop":  # a jump, then rest on the ground for half of each cycle
        return {"ty": -a * max(0.0, math.sin(k * p)) ** 1.5}
    if c.name == "slide":
        return {"tx": 0.5 * a * s * math.sin(k * p)}
    if c.name in ("squash", "wobble"):
        return {"aspect": 0.5 * a * math.sin(k * p)}
    if c.name == "rock":
        return {"rot": 0.5 * a * math.sin(k * p)}
    if c.name == "spin":
        return {"rot": math.degrees(s * k * p)}
    if c.name == "pulse":  # a heartbeat: quick growth, slower release
        return {"scale": a * max(0.0, math.sin(k * p)) ** 3}
    if c.name == "shake":
        return {"tx": 0.35 * a * (math.sin(k * p) + 0.5 * math.sin((k + 2) * p)),
                "ty": 0.2 * a * math.sin((k - 1) * p), "rot": 40 * a * math.sin((k + 1) * p)}
    if c.name == "float":
        return {"ty": 0.5 * a * math.sin(k * p), "rot": 2.0 * math.cos(k * p)}
    return {}


def _pivot(c: Component, box: tuple[float, float, float, float]) -> tuple[float, float]:
    left, top, right, bottom = box
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return (cx, bottom) if c.name in ("bounce", "hop", "squash", "wobble", "rock") else (cx, cy)


def _affine_inverse(x, y, c: Component, p: float, box, sticker: float):
    """Source coordinates of output pixels for one affine component (scale, aspect, rotate, translate)."""
    w = _waveform(c, p)
    if c.rest:
        at_rest = _waveform(c, 0.0)
        w = {k: v - at_rest.get(k, 0.0) for k, v in w.items()}
    px, py = _pivot(c, box)
    sx = math.exp(w.get("scale", 0.0) - w.get("aspect", 0.0) / 2)
    sy = math.exp(w.get("scale", 0.0) + w.get("aspect", 0.0) / 2)
    th = math.radians(w.get("rot", 0.0))
    u, v = x - px - w.get("tx", 0.0) * sticker, y - py - w.get("ty", 0.0) * sticker
    cos, sin = math.cos(th), math.sin(th)
    ur, vr = cos * u + sin * v, -sin * u + cos * v  # undo the rotation
    return px + ur / sx, py + vr / sy


def _smooth(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _warp_inverse(x, y, c: Component, p: float, box, sticker: float):
    """Source coordinates for one partial / non-rigid component."""
    left, top, right, bottom = box
    cx, width, height = (left + right) / 2, right - left, bottom - top
    a, k = c.amp, c.k
    up = np.clip((bottom - y) / max(height, 1.0), 0.0, 1.0)  # 0 at the bottom of the sticker, 1 at its top
    if c.name == "sway":  # the top bends sideways, the bottom stays
        return x - 0.5 * a * height * up ** 2 * math.sin(k * p) * c.sign, y
    if c.name == "jelly":
        m = 0.5 * a * math.sin(k * p) * up  # log aspect, growing towards the top: the top squashes most
        return cx + (x - cx) * np.exp(m / 2), bottom - (bottom - y) * np.exp(-m / 2)
    if c.name == "nod":  # the top third dips forward and back (a head nodding)
        return x, y - a * height * _smooth((up - 0.35) / 0.65) * (0.5 - 0.5 * math.cos(k * p))
    if c.name == "wave":  # one side (an arm) swings about a pivot at a third of the width from the centre
        side = c.sign
        pivot_x, pivot_y = cx + side * width / 6, top + 0.55 * height
        reach = _smooth(side * (x - pivot_x) / (width / 3))
        th = math.radians(60.0 * a) * math.sin(k * p) * reach
        u, v = x - pivot_x, y - pivot_y
        return pivot_x + np.cos(th) * u + np.sin(th) * v, pivot_y - np.sin(th) * u + np.cos(th) * v
    if c.name == "blink":  # the eye band (a third down the box) squashes shut briefly, then opens
        eye_y, band = top + 0.36 * height, 0.16 * height
        m = a * max(0.0, math.cos(k * p)) ** 12  # closed at phase 0 only briefly: the rest is open
        d = (y - eye_y) / band
        inside = np.abs(x - cx) < 0.45 * width
        g = np.where(inside & (np.abs(d) < 1), (1 - np.minimum(d * d, 1)) ** 2, 0.0)
        return x, y + m * (y - eye_y) * g
    raise ValueError(f"motion '{c.name}': expected one of {', '.join(MOTIONS)}")


def animate_still(rgba: np.ndarray, motion: str, size: int = 256, num_frames: int = NUM_FRAMES,
                  seed: int = 0) -> np.ndarray:
    """A seamless loop (num_frames, size, size, 4) uint8 of the still (H, W, 4) doing `motion`."""
    _check(motion)
    canvas = fit_on_canvas(visible_crop(rgba), size)  # (size, size, 4) uint8
    return animate_canvas(canvas, draw_components(motion, seed), num_frames)


def animate_canvas(canvas: np.ndarray, comps: list[Component], num_frames: int) -> np.ndarray:
    """A seamless loop (num_frames, H, W, 4) uint8 of a canvas (H, W, 4) uint8 moved by `comps`; frame 0
    is the canvas itself (every waveform is at rest at phase 0)."""
    box = alpha_box(canvas[..., 3])
    src = premultiply(canvas)
    frames = []
    for t in range(num_frames):
        xs, ys = source_coords(comps, 2 * math.pi * t / num_frames, box, canvas.shape[:2])
        frames.append(to_uint8(unpremultiply(sample_bilinear(src, xs, ys))))
    return np.stack(frames)


def alpha_box(alpha: np.ndarray, threshold: float = 8) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the visible pixels of an alpha plane (H, W), in pixels."""
    ys, xs = np.nonzero(alpha > threshold)
    if len(xs) == 0:
        raise ValueError("the still is fully transparent: nothing to animate")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


@dataclass(frozen=True)
class DrawnAt:
    """Where the moving sticker is drawn on its canvas: output = scale * input + (dx, dy), the offsets in
    shares of the canvas's width and height. DrawnAt() draws it where it is."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.dx == 0.0 and self.dy == 0.0


def source_coords(comps: list[Component], p: float, box, shape: tuple[int, int],
                  drawn: DrawnAt = DrawnAt()) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-index coordinates (H, W) to sample for each output pixel at phase p (inverse mapping); `drawn`
    is undone first (it is applied last)."""
    sticker = max(box[2] - box[0], box[3] - box[1])
    y, x = np.mgrid[:shape[0], :shape[1]].astype(np.float32) + 0.5  # pixel centres
    if not drawn.identity:
        x, y = (x - drawn.dx * shape[1]) / drawn.scale, (y - drawn.dy * shape[0]) / drawn.scale
    for c in comps:  # the first component is the outermost: undo it first
        inverse = _warp_inverse if MOTIONS[c.name].kind == "warp" else _affine_inverse
        x, y = inverse(x, y, c, p, box, sticker)
    return np.asarray(x, np.float32) - 0.5, np.asarray(y, np.float32) - 0.5


# ---- motion asked for by a prompt (sampling/prompt_motion.py) ------------------------------------------

WORD_MOTION = {"bouncing": "bounce", "hopping": "hop", "sliding": "slide", "swaying": "sway",
               "spinning": "spin", "rocking": "rock", "pulsing": "pulse", "shaking": "shake",
               "wobbling": "squash", "blinking": "blink", "waving": "wave", "nodding": "nod", "floating": "float"}
# Where in its parameter range a prompt's amplitude adverb puts a component (share of the range).
_AMPLITUDE_AT = {"gentle": 0.1, "": 0.7, "wild": 1.0}


def requested_components(words: tuple[str, ...] | list[str], amplitude: str = "", speed: str = "",
                         num_frames: int = 8, fps: float = 8.0) -> list[Component]:
    """The components a prompt asks for (motion/words.prompt_request): one per motion word (two at
    most, 'still' and unknown words skipped), amplitude from the adverb, cycles per loop from the speed
    (about 1 Hz, 0.5 Hz slowly, 2 Hz quickly; whole cycles, so the loop stays seamless). Each is relative
    to its rest pose, so phase 0 is the sticker itself."""
    names = [WORD_MOTION[w] for w in words if w in WORD_MOTION][:2]
    return [_at_rest(name, amplitude, speed, num_frames, fps) for name in names]


def preset_components(name: str, num_frames: int, fps: float) -> list[Component]:
    """A single motion chosen by name (a `--motion-preset`: bounce, slide, spin, ...) at its usual size and
    about 1 Hz, relative to its rest pose (phase 0 is the sticker itself); no prompt is read."""
    if name not in MOTIONS or "+" in name:
        raise ValueError(f"motion preset '{name}': expected one of {', '.join(procedural_motion_names(False))}")
    return [_at_rest(name, "", "", num_frames, fps)]


def _at_rest(name: str, amplitude: str, speed: str, num_frames: int, fps: float) -> Component:
    """One component of motion `name` at the amplitude an adverb names ("" usual, "gentle", "wild") and the
    speed ("" about 1 Hz, "slow", "fast") in whole cycles per loop of `num_frames` at `fps`."""
    (lo, hi), _ = _PARAMS[name]
    hz = {"slow": 0.5, "": 1.0, "fast": 2.0}[speed] / (2 if name == "bounce" else 1)  # |sin| bounces twice
    if name == "shake":  # a jitter: as fast as the frames allow
        k = max(1, num_frames // 2 - 1)
    else:
        k = max(1, min(round(hz * num_frames / fps), num_frames // 4 or 1))
    at = _AMPLITUDE_AT[amplitude] + (0.5 if name == "shake" else 0.0)  # a shake is small at its best
    amp = 1.0 if name == "spin" else lo + min(at, 1.0) * (hi - lo)
    return Component(name, amp, k, 1, rest=True)


def _gentler(comps: list[Component]) -> list[Component]:
    """Each amplitude 0.8 times smaller, not below the gentlest the training clips show; spins keep their
    whole turn."""
    return [c if c.name == "spin" else dataclasses.replace(c, amp=max(_PARAMS[c.name][0][0], 0.8 * c.amp))
            for c in comps]


def fit_in_view(comps: list[Component], alpha: np.ndarray, num_frames: int, lost: float = 0.001,
                size: int = 64) -> list[Component]:
    """Shrink the amplitudes (down to the low end of each range, the gentlest the training clips show)
    until the moving sticker keeps all but `lost` of its alpha inside the canvas (H, W): a sticker that
    fills its canvas slides less than one with room. Spins keep their full turn."""
    small = cv2.resize(alpha.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)[..., None]
    if small.sum() <= 0:
        return comps
    box = alpha_box(small[..., 0], 0.03 * float(small.max()))
    for _ in range(8):
        worst = 0.0
        for t in range(num_frames):
            xs, ys = source_coords(comps, 2 * math.pi * t / num_frames, box, small.shape[:2])
            worst = max(worst, 1.0 - float(sample_bilinear(small, xs, ys).sum() / small.sum()))
        if worst <= lost:
            break
        comps = _gentler(comps)
    return comps


MIN_ROOM_SCALE = 0.7  # the sticker is drawn at least this large when it makes room (a square spinning needs 0.71)


def motion_envelope(comps: list[Component], alpha: np.ndarray, num_frames: int) -> tuple[float, ...]:
    """(left, top, right, bottom) of everything the moving sticker covers over the loop, in shares of the
    canvas (beyond [0, 1] where it would leave it); alpha (H, W) in [0, 1], small (64 px is plenty)."""
    h, w = alpha.shape
    box = alpha_box(alpha, 0.03 * float(alpha.max()))
    wide = DrawnAt(1.0, 0.25, 0.25)  # a canvas twice as large with the sticker's canvas in its middle
    union = np.zeros((2 * h, 2 * w), np.float32)
    for t in range(num_frames):
        xs, ys = source_coords(comps, 2 * math.pi * t / num_frames, box, (2 * h, 2 * w), wide)
        union = np.maximum(union, sample_bilinear(alpha[..., None], xs, ys)[..., 0])
    ys, xs = np.nonzero(union > 0.05)
    still_ys, still_xs = np.nonzero(alpha > 0.05)
    if len(xs) == 0 or len(still_xs) == 0:
        return 0.0, 0.0, 1.0, 1.0
    # Both boxes in small-canvas pixels, edges exclusive; the still sticker's shifted into the wide canvas.
    moving = np.array([xs.min() - w / 2, ys.min() - h / 2, xs.max() + 1 - w / 2, ys.max() + 1 - h / 2])
    still = np.array([still_xs.min(), still_ys.min(), still_xs.max() + 1, still_ys.max() + 1], np.float64)
    grows = np.array([-1, -1, 1, 1])  # the direction each edge moves outwards
    # One more px on each side the motion reaches past the still sticker: a turning corner's tip falls
    # between the small canvas's pixels.
    reach = np.where(grows * (moving - still) > 0, moving + grows, still)
    return tuple(float(v) for v in reach / np.array([w, h, w, h]))


def drawn_for(envelope: tuple[float, ...]) -> DrawnAt:
    """The largest drawing of the sticker (scale <= 1) that keeps the motion's envelope on the canvas: scaled
    about the envelope's centre, then shifted the least that brings it inside (a bounce stands on the floor).
    DrawnAt() when the envelope is on the canvas already."""
    left, top, right, bottom = envelope
    if left >= 0 and top >= 0 and right <= 1 and bottom <= 1:
        return DrawnAt()
    scale = min(1.0, 1.0 / (right - left), 1.0 / (bottom - top))
    offsets = []
    for lo, hi in ((left, right), (top, bottom)):
        mid = (lo + hi) / 2
        new_lo, new_hi = mid + scale * (lo - mid), mid + scale * (hi - mid)
        shift = max(0.0, -new_lo) + min(0.0, 1.0 - new_hi)
        offsets.append((1 - scale) * mid + shift)
    return DrawnAt(float(scale), float(offsets[0]), float(offsets[1]))


def shrink_to_move(comps: list[Component], alpha: np.ndarray, num_frames: int, size: int = 64
                   ) -> tuple[list[Component], DrawnAt]:
    """The prompt's motion at its asked-for amplitude, with the sticker drawn smaller (down to MIN_ROOM_SCALE)
    so that the motion stays on the canvas; only past that do the amplitudes shrink, to the gentlest the
    training clips show (spins keep their whole turn, so a spinning sticker may still be drawn smaller)."""
    small = cv2.resize(alpha.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    if small.max() <= 0:
        return comps, DrawnAt()
    drawn = drawn_for(motion_envelope(comps, small, num_frames))
    for _ in range(8):
        if drawn.scale >= MIN_ROOM_SCALE:
            break
        comps = _gentler(comps)
        drawn = drawn_for(motion_envelope(comps, small, num_frames))
    return comps, drawn


def place_components(comps: list[Component], alpha: np.ndarray, num_frames: int, room: bool = True
                     ) -> tuple[list[Component], DrawnAt]:
    """Motion components fitted to a sticker's alpha (H, W) in [0, 1]: with `room`, the sticker is drawn
    smaller so the motion keeps its size and stays on the canvas (`shrink_to_move`); without, the motion
    shrinks to fit (`fit_in_view`). The one rule for a prompt's motion and a `--motion-preset`."""
    if not comps:
        return [], DrawnAt()
    return shrink_to_move(comps, alpha, num_frames) if room else (fit_in_view(comps, alpha, num_frames), DrawnAt())


def move_frames(frames: np.ndarray, comps: list[Component], cond: int, drawn: DrawnAt = DrawnAt()) -> np.ndarray:
    """Frames (T, H, W, 4) float straight RGBA in [0, 1], each moved by `comps` at its phase (frame `cond`
    at phase 0: untouched unless `drawn` redraws it smaller). Bicubic resampling of premultiplied colour
    (OpenCV), about the box of the conditioning frame."""
    t_len, h, w = frames.shape[:3]
    box = alpha_box(frames[cond, ..., 3], 8 / 255)
    out = np.empty_like(frames)
    for t in range(t_len):
        if t == cond and drawn.identity:
            out[t] = frames[t]
            continue
        xs, ys = source_coords(comps, 2 * math.pi * (t - cond) / t_len, box, (h, w), drawn)
        moved = cv2.remap(premultiply(frames[t]), xs, ys, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
        out[t] = unpremultiply(np.clip(moved, 0.0, 1.0))
    return out


# ---- captions ---------------------------------------------------------------------------------------


def component_amplitude(c: Component, num_frames: int = NUM_FRAMES) -> float | None:
    """The peak-to-peak amplitude of a component in its VOCAB word's unit, from the waveform itself
    (None for local warps: their adverb comes from where `amp` lies in its range)."""
    series = [_waveform(c, 2 * math.pi * t / num_frames) for t in range(num_frames)]
    key = {"bouncing": "ty", "hopping": "ty", "floating": "ty", "sliding": "tx", "rocking": "rot",
           "pulsing": "scale", "wobbling": "aspect", "shaking": "tx"}.get(c.word)
    if key is None or MOTIONS[c.name].kind == "warp":
        return None
    values = [s.get(key, 0.0) for s in series]
    return max(values) - min(values)


def component_phrase(c: Component, num_frames: int = NUM_FRAMES, fps: float = FPS,
                     rng: random.Random | None = None) -> str:
    """'gently bouncing quickly up and down': the word with adverbs from the actual parameters."""
    hz = c.k * fps / num_frames * (2 if c.name == "bounce" else 1)  # |sin| repeats twice per cycle
    amp = component_amplitude(c, num_frames)
    if amp is None:  # local warps: the third of the parameter range the draw fell in
        (lo, hi), _ = _PARAMS[c.name]
        w = VOCAB[c.word]
        amp = w.gentle * 0.5 if c.amp < lo + (hi - lo) / 3 else w.wild * 2 if c.amp > hi - (hi - lo) / 3 else (
            w.gentle + w.wild) / 2
    if c.name == "shake":
        hz = c.k * fps / num_frames
    return word_phrase(c.word, amp, hz, rng)


def exact_motion_phrase(motion: str, seed: int = 0, num_frames: int = NUM_FRAMES, fps: float = FPS,
                        rng: random.Random | None = None) -> str:
    """The exact phrase of what `animate_still(..., motion, num_frames=..., seed=seed)` does, e.g.
    'bouncing quickly up and down while spinning slowly around' (a random wording with `rng`)."""
    return join_phrases([component_phrase(c, num_frames, fps, rng) for c in draw_components(motion, seed)], rng)


def motion_caption(subject: str, motion: str, seed: int | None = None, num_frames: int = NUM_FRAMES,
                   fps: float = FPS) -> str:
    """'grinning face' + 'bounce' -> 'grinning face, bouncing up and down'; with `seed`, the exact phrase
    with adverbs of the clip `animate_still(..., seed=seed)` made."""
    _check(motion)
    phrase = MOTIONS[motion].phrase if seed is None else exact_motion_phrase(motion, seed, num_frames, fps)
    return f"{subject}, {phrase}"


def pick_motions(key: str, n: int, motions: list[str] | None = None) -> list[str]:
    """`n` distinct motions for one still, chosen reproducibly from its key."""
    names = list(motions or MOTIONS)
    return random.Random(f"motions:{key}").sample(names, min(n, len(names)))
