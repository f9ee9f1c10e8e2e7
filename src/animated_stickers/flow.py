"""Dense optical flow between two premultiplied RGBA frames: OpenCV DIS, one place for every user.

Used by the export retimer (export/inbetween.py: motion-compensated in-betweens), by the reference
decoder (models/decoder.py: warp the sticker into each decoded frame) and by the warp renderer
(the sticker moved along the loop-smoothed motion, `loop_smooth`). DIS matches one uint8
channel, so a frame is shown to it as luma over mid grey: a dark or a light body both stand out
from the transparent background, and alpha edges move with the shape.
Side by side with the numpy Lucas-Kanade it replaced in the retimer, DIS is as good (the numbers
are in export/inbetween.py).
"""

from __future__ import annotations

import cv2
import numpy as np

DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
DEFAULT_PRESET = "medium"  # also the reference decoder's default (DecoderConfig.flow_preset)
MIN_SIDE = 16  # DIS rejects images smaller than about one patch; smaller frames are edge-padded


def flow_gray(pm: np.ndarray) -> np.ndarray:
    """Premultiplied (h, w, 4) float -> uint8 (h, w) luma over mid grey."""
    luma = pm[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip((luma + 0.5 * (1 - pm[..., 3])) * 255 + 0.5, 0, 255).astype(np.uint8)


def frame_flow(pm_a: np.ndarray, pm_b: np.ndarray, preset: str = DEFAULT_PRESET,
               finest_scale: int | None = None) -> np.ndarray:
    """Flow (h, w, 2) float32 in pixels (dx, dy) with A(x) ~ B(x + flow(x)); A, B premultiplied (h, w, 4).

    `finest_scale` overrides the preset's finest pyramid level (0: full resolution, slower)."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    if finest_scale is not None:
        dis.setFinestScale(finest_scale)
    h, w = pm_a.shape[:2]
    pad_y, pad_x = max(0, MIN_SIDE - h), max(0, MIN_SIDE - w)
    ga, gb = (cv2.copyMakeBorder(flow_gray(p), 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE) for p in (pm_a, pm_b))
    return dis.calc(ga, gb, None)[:h, :w]


def flows_to_frame(frames: np.ndarray, cond: int, preset: str = DEFAULT_PRESET) -> np.ndarray:
    """Premultiplied frames (T, h, w, 4) -> backward flow (T, h, w, 2): frame t at x looks like frame
    `cond` at x + flow. Exactly zero at `cond` itself (the reference decoder's warp source)."""
    flow = np.zeros((*frames.shape[:3], 2), np.float32)
    for j in range(frames.shape[0]):
        if j != cond:
            flow[j] = frame_flow(frames[j], frames[cond], preset)
    return flow


def loop_smooth(flows: np.ndarray, cond: int, harmonics: int) -> np.ndarray:
    """Flows (T, h, w, 2) over one loop -> the same motion with only its lowest `harmonics` loop frequencies
    (real FFT over time; frame T-1 is followed by frame 0), shifted so frame `cond` stays exactly zero.
    Frame-to-frame jitter (the small model's shimmer) lives in the high frequencies; a bounce, a sway or a
    wave is one or two cycles per loop. The result is periodic, so the loop has no seam."""
    t = flows.shape[0]
    spectrum = np.fft.rfft(flows.astype(np.float64), axis=0)  # (T//2 + 1, h, w, 2)
    spectrum[harmonics + 1:] = 0
    smooth = np.fft.irfft(spectrum, n=t, axis=0)  # (T, h, w, 2)
    return (smooth - smooth[cond:cond + 1]).astype(np.float32)


def warp_along(reference: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """Premultiplied reference (H, W, 4) + low-res flows (T, h, w, 2) -> the reference moved into every
    frame (T, H, W, 4), bicubic; flows are resized to H x W and their vectors scaled. A zero flow (the
    conditioning frame) gives the reference itself, untouched."""
    big_h, big_w = reference.shape[:2]
    h, w = flows.shape[1:3]
    gy, gx = np.mgrid[:big_h, :big_w].astype(np.float32)
    out = np.empty((flows.shape[0], big_h, big_w, 4), np.float32)
    for j, f in enumerate(flows):
        if not f.any():
            out[j] = reference
            continue
        f = cv2.resize(f, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
        out[j] = cv2.remap(reference, gx + f[..., 0] * (big_w / w), gy + f[..., 1] * (big_h / h),
                           cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


def move_sticker(reference: np.ndarray, flows: np.ndarray, cond: int, harmonics: int) -> np.ndarray:
    """The warp render (both engines): straight RGBA reference (S, S, 4) + the decoded frames' flows
    (T, h, w, 2) -> straight RGBA frames (T, S, S, 4) in [0, 1]: the sticker moved along its loop-smoothed
    motion, every pixel its own."""
    from .rgba import premultiply, unpremultiply  # noqa: PLC0415 (rgba imports Pillow; flow stays light)

    # unpremultiply clamps the bicubic overshoot: alpha to [0, 1], colour to [0, alpha].
    return unpremultiply(warp_along(premultiply(reference), loop_smooth(flows, cond, harmonics)))
