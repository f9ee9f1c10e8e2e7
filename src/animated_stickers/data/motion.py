"""Motion scores of an animation (paper 3.1.1: motion bucketing needs a per-video motion score).

Two scores, both measured on frames resized to `size` px and resampled to about `ref_fps`, so videos of
different sizes and rates compare; both are divided by the sticker's mean area (its mean alpha
coverage), so a small sticker on a big transparent canvas is not scored as still:
  (a) `frame_diff`: like VMAF's `motion` feature, the mean absolute difference of blurred luma between
      consecutive frames (0-255 scale), made alpha-aware by also counting alpha changes;
  (b) `mv`: the mean norm (pixels per frame) of the motion vectors an H.264 encoder finds, read back
      from the decoder with `flags2=+export_mvs` (PyAV side data MOTION_VECTORS).
"""

from __future__ import annotations

import io
import random
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

SCORE_SIZE = 128  # px: both scores are measured at this size
REF_FPS = 24.0  # frames are subsampled towards this rate before scoring
_BLUR = np.array([0.054488685, 0.244201342, 0.402619947, 0.244201342, 0.054488685])  # 5-tap Gaussian
_GREY = 0.5  # transparent pixels are composited over mid grey before luma is taken


@dataclass
class MotionScores:
    """Per-video motion scores: frame difference (0-255 luma) and mean H.264 motion-vector norm (px)."""

    frame_diff: float
    mv: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _normalise(frames: np.ndarray, video_fps: float, size: int, ref_fps: float) -> np.ndarray:
    """(T, H, W, 4) uint8 -> (T', size, size, 4) float32 in [0, 1], subsampled towards ref_fps."""
    if frames.ndim != 4 or frames.shape[-1] != 4:
        raise ValueError(f"expected RGBA frames (T, H, W, 4), got shape {frames.shape}")
    step = max(1, round(video_fps / ref_fps)) if video_fps > 0 else 1
    frames = frames[::step]
    if frames.shape[1:3] != (size, size):
        frames = np.stack([np.asarray(Image.fromarray(f, "RGBA").resize((size, size), Image.BILINEAR))
                           for f in frames])
    return frames.astype(np.float32) / 255.0


def _composite_luma(rgba: np.ndarray) -> np.ndarray:
    """BT.601 luma (0-255) of straight RGBA composited over grey: (T, H, W, 4) -> (T, H, W)."""
    a = rgba[..., 3:]
    rgb = rgba[..., :3] * a + _GREY * (1.0 - a)
    return 255.0 * (rgb @ np.array([0.299, 0.587, 0.114], np.float32))


def _blur(x: np.ndarray) -> np.ndarray:
    """Separable 5-tap Gaussian over the last two axes with edge padding."""
    for axis in (-2, -1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (2, 2)
        xp = np.pad(x, pad, mode="edge")
        n = x.shape[axis]
        x = sum(w * np.take(xp, np.arange(i, i + n), axis=axis) for i, w in enumerate(_BLUR))
    return x


def _content_area(rgba: np.ndarray) -> float:
    """Mean number of pixels the sticker covers per frame (at least 5% of the canvas, to bound ratios)."""
    h, w = rgba.shape[1:3]
    return max(float(rgba[..., 3].sum(axis=(1, 2)).mean()), 0.05 * h * w)


def frame_difference_score(frames: np.ndarray, video_fps: float, size: int = SCORE_SIZE,
                           ref_fps: float = REF_FPS) -> float:
    """Mean |blurred luma change| (or alpha change) between consecutive frames per pixel of sticker."""
    return _frame_difference(_normalise(frames, video_fps, size, ref_fps))


def _frame_difference(rgba: np.ndarray) -> float:
    if len(rgba) < 2:
        return 0.0
    luma = _blur(_composite_luma(rgba))
    alpha = _blur(255.0 * rgba[..., 3])
    diff = np.maximum(np.abs(np.diff(luma, axis=0)), np.abs(np.diff(alpha, axis=0)))  # (T'-1, H, W)
    return float(diff.sum(axis=(1, 2)).mean()) / _content_area(rgba)


def _encode_h264(rgb: np.ndarray, fps: float) -> io.BytesIO:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=max(1, round(fps)))
        stream.width, stream.height = rgb.shape[2], rgb.shape[1]
        stream.pix_fmt = "yuv420p"
        # One keyframe, P-frames only: every later frame carries motion vectors to its predecessor.
        stream.options = {"preset": "veryfast", "bf": "0", "g": "100000", "crf": "23", "threads": "1"}
        for frame in rgb:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    return buf


def _side_data(frame, name: str):
    side = frame.side_data
    try:
        return side.get(name)
    except AttributeError:  # older PyAV: a list of side-data objects
        return next((s for s in side if str(getattr(s, "type", "")).endswith(name)), None)


def motion_vector_score(frames: np.ndarray, video_fps: float, size: int = SCORE_SIZE,
                        ref_fps: float = REF_FPS) -> float:
    """Mean H.264 motion-vector norm (px/frame at `size`) per pixel of sticker, P-frames only."""
    step = max(1, round(video_fps / ref_fps)) if video_fps > 0 else 1
    return _motion_vectors(_normalise(frames, video_fps, size, ref_fps), video_fps / step if video_fps > 0 else ref_fps)


def _motion_vectors(rgba: np.ndarray, fps: float) -> float:
    import av

    if len(rgba) < 2:
        return 0.0
    a = rgba[..., 3:]
    rgb = (255.0 * (rgba[..., :3] * a + _GREY * (1.0 - a)) + 0.5).astype(np.uint8)
    buf = _encode_h264(rgb, fps)
    area = _content_area(rgba)
    per_frame = []
    with av.open(buf) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        for i, frame in enumerate(container.decode(stream)):
            if i == 0:
                continue  # the keyframe has no motion vectors
            mvs = _side_data(frame, "MOTION_VECTORS")
            if mvs is None:  # a frame coded as all-skip: nothing moved
                per_frame.append(0.0)
                continue
            v = mvs.to_ndarray()
            v = v[v["source"] < 0]  # vectors to the previous frame (the only reference here)
            scale = np.maximum(v["motion_scale"], 1).astype(np.float64)
            norm = np.hypot(v["motion_x"] / scale, v["motion_y"] / scale)
            per_frame.append(float((norm * v["w"] * v["h"]).sum()) / area)
    return float(np.mean(per_frame)) if per_frame else 0.0


def motion_scores(frames: np.ndarray, video_fps: float, with_mv: bool = True) -> MotionScores:
    """Both motion scores of straight RGBA frames (T, H, W, 4) uint8 at `video_fps` (resized once)."""
    rgba = _normalise(frames, video_fps, SCORE_SIZE, REF_FPS)
    step = max(1, round(video_fps / REF_FPS)) if video_fps > 0 else 1
    rate = video_fps / step if video_fps > 0 else REF_FPS
    return MotionScores(frame_diff=_frame_difference(rgba), mv=_motion_vectors(rgba, rate) if with_mv else None)


# ---------------------------------------------------------------- the learned motion model's target

SPECTRAL_EXT = "spectral.safetensors"  # the shard part holding a clip's spectral volumes (safetensors)


def loop_positions(period: int, loop_frames: int) -> list[int]:
    """Constant-rate step indices of `loop_frames` frames evenly over one loop of `period` steps, from step 0."""
    return [round(i * period / loop_frames) % period for i in range(loop_frames)]


def spectral_targets(frames: np.ndarray, period: int, key: str, phases: int = 4, size: int | None = None,
                     harmonics: int | None = None) -> tuple[np.ndarray, dict]:
    """Spectral volumes (P, 4K, size, size) float16 of one loop of straight RGBA frames (T, H, W, 4) uint8 (on
    the constant-rate grid), each relative to a conditioning phase drawn at random (seeded by `key`), and
    their description for the sample's metadata. The frames are fitted on a transparent square exactly as
    the loader fits the still (rgba.fit_pad_frames), so the still and its target line up at any resolution."""
    from ..motion.spectral import HARMONICS, LOOP_FRAMES, SIZE, volume_from_frames
    from ..rgba import fit_pad_frames, premultiply

    size, harmonics = size or SIZE, harmonics or HARMONICS
    n = min(LOOP_FRAMES, period)  # period >= 8 (clips.loop_period), so n // 2 >= 4 harmonics fit
    steps = loop_positions(period, n)
    pm = premultiply(fit_pad_frames(frames[steps], size).astype(np.float32) / 255.0)  # (n, s, s, 4)
    chosen = sorted(random.Random(f"spectral:{key}").sample(range(n), min(phases, n)))
    volumes = np.stack([volume_from_frames(pm, c, harmonics) for c in chosen]).astype(np.float16)
    info = {"loop_frames": n, "phases": chosen, "still_steps": [steps[c] for c in chosen], "harmonics": harmonics,
            "size": size, "units": "canvas", "flow": "backward (frame at x looks like the still at x + flow)"}
    return volumes, info


def procedural_spectral_target(canvas_alpha: np.ndarray, motion: str, seed: int, num_frames: int, period: int,
                               size: int | None = None, harmonics: int | None = None) -> tuple[np.ndarray, dict]:
    """The exact spectral volume (1, 4K, size, size) float16 of a procedural clip (motion/procedural.py
    animate_still of a canvas with alpha `canvas_alpha` (H, W), `num_frames` frames, one loop every `period`),
    relative to frame 0, the still itself (every waveform rests at phase 0): the generator's own inverse
    map is the backward flow, so no flow is estimated."""
    import cv2

    from ..motion.procedural import alpha_box, draw_components, source_coords
    from ..motion.spectral import HARMONICS, LOOP_FRAMES, SIZE, spectral_volume

    size, harmonics = size or SIZE, harmonics or HARMONICS
    h, w = canvas_alpha.shape
    comps, box = draw_components(motion, seed), alpha_box(canvas_alpha)
    n = min(LOOP_FRAMES, period)
    steps = loop_positions(period, n)
    gy, gx = np.mgrid[:h, :w].astype(np.float32)
    flows = []
    for s in steps:
        xs, ys = source_coords(comps, 2 * np.pi * s / num_frames, box, (h, w))
        d = np.stack([xs - gx, ys - gy], axis=-1)  # (h, w, 2) px: frame s at x samples the still at x + d
        flows.append(cv2.resize(d, (size, size), interpolation=cv2.INTER_AREA) * np.array([size / w, size / h]))
    volume = spectral_volume(np.stack(flows).astype(np.float32), harmonics, cond=0)
    info = {"loop_frames": n, "phases": [0], "still_steps": [0], "harmonics": harmonics, "size": size,
            "units": "canvas", "flow": "backward (frame at x looks like the still at x + flow)", "exact": True}
    return volume[None].astype(np.float16), info


def spectral_bytes(volumes: np.ndarray) -> bytes:
    """Volumes (P, 4K, s, s) as safetensors bytes (never a pickle)."""
    from safetensors.numpy import save

    return save({"volumes": np.ascontiguousarray(volumes)})


def read_spectral(blob: bytes) -> np.ndarray:
    """The volumes (P, 4K, s, s) float16 of a sample's spectral part; ValueError when unreadable."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        volumes = load(blob)["volumes"]
    except (SafetensorError, KeyError, OSError) as e:
        raise ValueError(f"spectral target unreadable ({e})") from None
    if volumes.ndim != 4 or volumes.shape[1] % 4 or not np.isfinite(volumes).all():
        raise ValueError(f"spectral target of shape {volumes.shape}: expected finite (P, 4K, s, s)")
    return volumes
