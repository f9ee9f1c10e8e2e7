"""After the latents: one path for both engines (pipeline.py runs the networks with torch,
onnx_pipeline.py with onnxruntime; everything here is numpy and runs the same for both).

1. `draw_frames`: the render. The VAE's decoded frames (network) say where things move: dense flow from
   each frame to the conditioning frame (flow.flows_to_frame). "warp" moves the full-size sticker along that
   motion kept to its slowest loop cycles (flow.move_sticker: no learned part, every pixel the sticker's
   own); "fuse" warps the sticker along the raw flow and lets the reference decoder's fusion net (network)
   gate it against the decoded frames. Without a reference (fuse render, no decoder) the decoded frames
   are the frames.
2. `move_as_prompted`: the global motion the prompt names, applied exactly (prompt_motion.py).
3. `to_stickers`: each frame cropped and resized back to the input's size and aspect, and with
   `paste_input` the input itself at the conditioning frame.
Frame rate and file layout come after, at export (export/), for both engines alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from ..config import RenderSettings
from ..flow import flows_to_frame, move_sticker, warp_along
from ..rgba import Placement, array_to_images, premultiply, restore_from_square
from .preprocess import Sticker
from .prompt_motion import draws_smaller, move_by_prompt

# The reference decoder's fusion net, run by an engine: premultiplied decoded frames (N, 4, h, w), the
# premultiplied warped sticker (N, 4, S, S) and the flow (N, 2, h, w) -> straight RGBA frames (N, 4, S, S).
Fuse = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def draw_frames(decoded: np.ndarray, reference: np.ndarray | None, cond: int, render: RenderSettings,
                preset: str, fuse: Fuse | None = None) -> np.ndarray:
    """Straight decoded frames (B, T, h, w, 4) + straight reference stickers (B, S, S, 4) or None ->
    straight RGBA frames (B, T, S, S, 4) in [0, 1] (the decoded frames themselves without a reference)."""
    if reference is None:
        return decoded
    low = premultiply(decoded)  # (B, T, h, w, 4)
    flows = np.stack([flows_to_frame(v, cond, preset) for v in low])  # (B, T, h, w, 2)
    if render.render == "warp" or fuse is None:
        return np.stack([move_sticker(r, f, cond, render.harmonics) for r, f in zip(reference, flows)])
    warped = np.stack([warp_along(premultiply(r), f) for r, f in zip(reference, flows)])  # (B, T, S, S, 4)
    b, t = low.shape[:2]
    # (B, T, H, W, C) -> (B*T, C, H, W): every frame of the batch through the fusion net at once
    out = fuse(*(x.reshape(b * t, *x.shape[2:]).transpose(0, 3, 1, 2) for x in (low, warped, flows)))
    return out.transpose(0, 2, 3, 1).reshape(b, t, *out.shape[2:], 4)  # (B*T, 4, S, S) -> (B, T, S, S, 4)


def move_as_prompted(videos: np.ndarray, prompts: list[str], cond: int, render: RenderSettings) -> np.ndarray:
    """Straight RGBA videos (B, T, H, W, 4) -> the same with each prompt's global motion (when
    `render.prompt_motion`; a prompt that names no motion leaves its video as the model made it)."""
    if not render.prompt_motion:
        return videos
    out = videos
    for i, prompt in enumerate(prompts):
        moved = move_by_prompt(videos[i], prompt, cond, draws_smaller(render))
        if moved is not None:
            out = videos.copy() if out is videos else out  # copy once, only when something moves
            out[i] = moved
    return out


def to_stickers(videos: np.ndarray, stickers: list[Sticker], placements: list[Placement], cond: int,
                render: RenderSettings) -> list[list[Image.Image]]:
    """Straight RGBA videos (B, T, S, S, 4) -> per sticker its frames as RGBA images at its own size."""
    out = []
    for video, sticker, placement in zip(videos, stickers, placements):
        seq = [restore_from_square(f, placement) for f in array_to_images(video)]
        if render.paste_input:
            seq[cond] = sticker.rgba.copy()
        out.append(seq)
    return out
