"""Examples for the learned motion model (issue 28) from prepared shards: (still, caption, spectral volume).

`stickers data prepare --motion-targets` stores, per looping clip, spectral volumes (motion/spectral.py:
the lowest K loop harmonics of the DIS flow from every loop frame to a conditioning frame, 64 px, canvas
units) for a few conditioning phases drawn at random (data/motion.py spectral_targets; procedural clips:
the generator's exact warp, relative to the still). An example picks one of them, decodes that phase's
frame from the clip's own bytes as the still (fitted on a transparent square exactly like the target's
frames, so both line up at any resolution), mirrors both at random (the flow's x component too), rotates
and scales both a little at random (`rotate_scale`: the field is resampled and its vectors turned and
scaled with it), words a caption (data/captions.py motion_model_caption) and draws the CFG dropout (the
loader's `draw_dropout`). With `canonical_phase` (the motion-tiny recipe's choice) the target is the
clip's consensus volume (motion/spectral.py `consensus_volume`: its stored phases turned to the canonical
loop phase, aligned and averaged), the same for every stored phase's still, and the augmented volume is
turned to its canonical phase again (the stored phase of the still no longer shows in the target; the
shards keep the measured phases). With `p_fresh_motion` a procedural clip's still is given a procedural
motion drawn anew (`draw_fresh_motion`) with its exact volume and a caption naming it: 1,290 stored
procedural clips taught the motion words too rarely (the v4 model followed its own training captions on
0.3 of training stills), while fresh draws give every still every motion, so only the text can say which.
Every choice comes from one
`random.Random`, so a seed fixes the data; training/motion_task.py caches the decoded stills and calls the
same rules (one data path).

An example (`make_motion_example`) is a dict:
    still (4, S, S) float32 straight RGBA in [0, 1]     volume (4K, s, s) float32 canvas units
    (canonical phase when cfg.canonical_phase)
    prompt str ("" when the text is dropped), caption str, drop_text / drop_image bool, flip bool,
    phase int (the conditioning loop position), key, source, split str
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import torch

from ..motion.spectral import canonical_phase, consensus_volume, flip_volume
from ..rgba import fit_pad_frames
from .animation import AnimationReadError, decode_animation
from .captions import motion_model_caption
from .loader import DROPOUT, StickerClips, draw_dropout, sample_rng, source_frames
from .motion import SPECTRAL_EXT, read_spectral

log = logging.getLogger(__name__)


@dataclass
class MotionLoaderConfig:
    """What motion examples to make from a prepared data folder (made with --motion-targets)."""

    data: str
    resolution: int = 128  # the still's side; the target keeps its stored grid (64 px)
    p_flip: float = 0.5  # horizontal mirror of still and motion
    p_affine: float = 0.5  # a small rotation and scale of still and motion (AFFINE_RANGE)
    p_drop_text: float = DROPOUT
    p_drop_image: float = DROPOUT
    p_drop_both: float = DROPOUT
    canonical_phase: bool = False  # turn each volume to its canonical loop phase (motion/spectral.py)
    p_fresh_motion: float = 0.0  # a procedural clip's still with a freshly drawn procedural motion
    split: str | None = "train"
    sources: tuple[str, ...] | None = None
    shuffle_buffer: int = 64
    seed: int = 0
    epochs: int | None = None


@dataclass(frozen=True)
class MotionPlan:
    """Every random choice behind one motion example."""

    slot: int  # which stored conditioning phase (index into the sample's volumes)
    flip: bool
    angle: float  # degrees, counter-clockwise on screen (0: none)
    scale: float  # about the canvas centre (1: none)
    caption: str
    drop_text: bool
    drop_image: bool
    cross: int | None = None  # a cross-style still (data/cross_style.py) instead of the stored phase's frame
    fresh: tuple[str, int] | None = None  # (procedural motion, seed) drawn anew instead of the stored target


FRESH_SINGLE_SHARE = 0.7  # fresh motions are one component this often (a word's plain meaning), else a combination


def draw_fresh_motion(rng: random.Random) -> tuple[str, int]:
    """(procedural motion name, seed) for `fresh_volume`: a single component with FRESH_SINGLE_SHARE, else one
    of the combinations; the seed draws its amplitude, speed and direction (motion/procedural.py)."""
    from ..motion.procedural import procedural_motion_names

    names = procedural_motion_names(combos=True)
    single = rng.random() < FRESH_SINGLE_SHARE
    return rng.choice([n for n in names if ("+" in n) != single]), rng.randrange(2 ** 31)


def fresh_volume(still: np.ndarray, fresh: tuple[str, int]) -> np.ndarray:
    """The exact spectral volume (4K, s, s) float32 canvas units of procedural motion `fresh` = (name, seed) on
    a straight RGBA still (S, S, 4) uint8, relative to the still (data/motion.py procedural_spectral_target,
    a 2 s loop at 24 fps like the stored procedural clips)."""
    from ..motion.procedural import NUM_FRAMES
    from .motion import procedural_spectral_target

    volume, _ = procedural_spectral_target(still[..., 3], fresh[0], fresh[1], NUM_FRAMES, NUM_FRAMES)
    return volume[0].astype(np.float32)


AFFINE_RANGE = (10.0, 0.85, 1.05)  # max |angle| in degrees, scale range (Fluent fills its canvas: little up)


def plan_motion_example(meta: dict, rng: random.Random, p_flip: float = 0.5, p_drop_text: float = DROPOUT,
                        p_drop_image: float = DROPOUT, p_drop_both: float = DROPOUT, p_affine: float = 0.5,
                        cross_count: int = 0, p_cross: float = 0.0, p_fresh: float = 0.0) -> MotionPlan:
    """The one rule set of a motion example: stored phase (or, with probability `p_cross`, one of
    `cross_count` cross-style stills of the emoji), for a procedural clip with probability `p_fresh` a motion
    drawn anew, mirror, rotation/scale, caption (naming the fresh motion), CFG dropout."""
    slot = rng.randrange(len(meta["spectral"]["phases"]))
    cross = rng.randrange(cross_count) if cross_count and rng.random() < p_cross else None
    fresh = None
    if p_fresh and meta.get("procedural_motion") and rng.random() < p_fresh:
        from ..motion.procedural import FPS, NUM_FRAMES

        fresh = draw_fresh_motion(rng)
        meta = {**meta, "procedural_motion": fresh[0], "procedural_seed": fresh[1],
                "procedural_frames": NUM_FRAMES, "fps": FPS}  # the caption words the fresh motion
    flip = rng.random() < p_flip
    angle, scale = 0.0, 1.0
    if rng.random() < p_affine:
        max_deg, lo, hi = AFFINE_RANGE
        angle, scale = rng.uniform(-max_deg, max_deg), rng.uniform(lo, hi)
    caption = motion_model_caption(meta, rng)
    drop_text, drop_image = draw_dropout(rng, p_drop_text, p_drop_image, p_drop_both)
    return MotionPlan(slot, flip, angle, scale, caption, drop_text, drop_image, cross, fresh)


def phase_stills(meta: dict, data: bytes, resolution: int) -> np.ndarray:
    """(P, S, S, 4) uint8 straight RGBA: the clip's frame at each stored conditioning phase, fitted on a
    transparent square like the frames the targets were measured on."""
    steps = meta["spectral"]["still_steps"]  # constant-rate steps (data/shards.py analyse_item)
    frames = decode_animation(data, "." + meta["ext"], indices=source_frames(meta, steps)).frames
    return fit_pad_frames(frames, resolution)


def mirror(still: np.ndarray, volume: np.ndarray, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Still (S, S, 4) and volume (4K, s, s), mirrored left-right together when `flip`."""
    return (still[:, ::-1].copy(), flip_volume(volume)) if flip else (still, volume)


def rotate_scale(still: np.ndarray, volume: np.ndarray, angle: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Still (S, S, 4) uint8 straight RGBA and volume (4K, s, s) canvas units turned by `angle` degrees and
    scaled by `scale` about the canvas centre, together. The field is backward flow (frame(x) = still(x +
    D(x))); under x' = A x + b the new field is D'(x') = A D(A^-1 (x' - b)): resampled like the still, its
    vectors (the Re and Im parts of every harmonic) multiplied by A's linear part."""
    import cv2  # noqa: PLC0415

    from ..rgba import premultiply, unpremultiply  # noqa: PLC0415

    if angle == 0.0 and scale == 1.0:
        return still, volume
    side, s = still.shape[0], volume.shape[-1]
    m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)  # forward map: x' = m[:, :2] x + m[:, 2]
    pm = premultiply(still.astype(np.float32) / 255)  # warp premultiplied: no dark fringes at the edges
    pm = cv2.warpAffine(pm, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    still = (unpremultiply(pm) * 255 + 0.5).astype(np.uint8)
    mv = cv2.getRotationMatrix2D((s / 2, s / 2), angle, scale)
    field = cv2.warpAffine(np.ascontiguousarray(volume.transpose(1, 2, 0)), mv, (s, s), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (s, s, 4K)
    v = field.transpose(2, 0, 1).reshape(-1, 2, 2, s, s)  # (K, [x, y], [Re, Im], s, s)
    v = np.einsum("ij,kjrhw->kirhw", m[:, :2].astype(np.float32), v)  # vectors times A's linear part
    return still, np.ascontiguousarray(v.reshape(volume.shape).astype(np.float32))


def phase_is_canonical(meta: dict, canonical: bool) -> bool:
    """Whether a sample's target is turned to the canonical loop phase: with `canonical` (the stage's choice),
    for clips whose still sits at an arbitrary loop phase. Not for procedural clips: their still is the rest
    pose at phase 0 by construction, so their targets agree already, and turning the phase of a large rotation
    is wrong (a phase-shifted field is D(phi + psi) - D(psi), which for a spin is no rotation: canonical spin
    targets rendered as a pulse or a rock in 5 of 6 draws, measured)."""
    return canonical and not meta.get("procedural_motion")


def augment(still: np.ndarray, volume: np.ndarray, plan: MotionPlan, canonical: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """A plan's mirror, then its rotation and scale, applied to still and volume together; with `canonical`
    the result's volume is then turned to its canonical loop phase (after the augmentation, so the target is
    canonical for the field the network sees)."""
    still, volume = mirror(still, volume, plan.flip)
    still, volume = rotate_scale(still, volume, plan.angle, plan.scale)
    return (still, canonical_phase(volume)) if canonical else (still, volume)


def make_motion_example(meta: dict, data: bytes, spectral: bytes, cfg: MotionLoaderConfig,
                        rng: random.Random) -> dict:
    """One motion example from a sample's metadata, file bytes and spectral part (module docstring)."""
    plan = plan_motion_example(meta, rng, cfg.p_flip, cfg.p_drop_text, cfg.p_drop_image, cfg.p_drop_both,
                               cfg.p_affine, p_fresh=cfg.p_fresh_motion)
    stored = read_spectral(spectral)  # (P, 4K, s, s)
    canonical = phase_is_canonical(meta, cfg.canonical_phase)
    volume = consensus_volume(stored) if canonical else stored[plan.slot].astype(np.float32)
    still = phase_stills({**meta, "spectral": {**meta["spectral"],
                                               "still_steps": [meta["spectral"]["still_steps"][plan.slot]]}},
                         data, cfg.resolution)[0]
    if plan.fresh is not None:
        volume = fresh_volume(still, plan.fresh)
    still, volume = augment(still, volume, plan, canonical)
    return {"still": torch.from_numpy(still).permute(2, 0, 1).float().div_(255.0),  # (S,S,4) -> (4,S,S)
            "volume": torch.from_numpy(np.ascontiguousarray(volume)),
            "prompt": "" if plan.drop_text else plan.caption, "caption": plan.caption,
            "drop_text": plan.drop_text, "drop_image": plan.drop_image, "flip": plan.flip,
            "angle": plan.angle, "scale": plan.scale,
            "phase": meta["spectral"]["phases"][plan.slot], "key": meta["key"],
            "source": meta.get("source", ""), "split": meta.get("split", "")}


class StickerMotion(StickerClips):
    """Streams motion examples from shards (the same readers, shuffling and seeding as StickerClips);
    samples without a motion target (stills, clips that do not loop) are passed over."""

    def __init__(self, cfg: MotionLoaderConfig, rank: int | None = None, world_size: int | None = None):
        from .loader import LoaderConfig

        clips = LoaderConfig(data=cfg.data, split=cfg.split, sources=cfg.sources, shuffle_buffer=cfg.shuffle_buffer,
                             seed=cfg.seed, epochs=cfg.epochs)
        super().__init__(clips, rank=rank, world_size=world_size)
        self.motion_cfg = cfg

    def _meta(self, key: str, parts: dict[str, bytes]) -> dict | None:
        meta = super()._meta(key, parts)
        if meta is None or not meta.get("spectral") or SPECTRAL_EXT not in parts:
            return None
        return {**meta, "_spectral": parts[SPECTRAL_EXT]}  # a private copy of the metadata carries the part

    def _example(self, item: tuple[dict, bytes], epoch: int) -> dict | None:
        meta, data = item
        try:
            return make_motion_example(meta, data, meta["_spectral"], self.motion_cfg,
                                       sample_rng(self.motion_cfg.seed, epoch, meta["key"]))
        except (AnimationReadError, ValueError, KeyError) as e:
            log.warning("sample '%s': skipped (%s)", meta.get("key"), e)
            return None
