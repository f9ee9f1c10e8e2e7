"""Dense optical flow between two premultiplied RGBA frames: OpenCV DIS, one place for every user.

Used by the export retimer (export/flow.py: motion-compensated in-betweens) and by the reference
decoder (models/decoder.py: warp the sticker into each decoded frame). DIS matches one uint8
channel, so a frame is shown to it as luma over mid grey: a dark or a light body both stand out
from the transparent background, and alpha edges move with the shape.
Side by side with the numpy Lucas-Kanade it replaced in the retimer, DIS is as good (the numbers
are in export/flow.py).
"""

from __future__ import annotations

import cv2
import numpy as np

DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
MIN_SIDE = 16  # DIS rejects images smaller than about one patch; smaller frames are edge-padded


def flow_gray(pm: np.ndarray) -> np.ndarray:
    """Premultiplied (h, w, 4) float -> uint8 (h, w) luma over mid grey."""
    luma = pm[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip((luma + 0.5 * (1 - pm[..., 3])) * 255 + 0.5, 0, 255).astype(np.uint8)


def frame_flow(pm_a: np.ndarray, pm_b: np.ndarray, preset: str = "medium",
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
