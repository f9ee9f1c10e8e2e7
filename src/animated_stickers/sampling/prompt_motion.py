"""The motion a prompt names, made exact: the sticker's global motion comes from the prompt (issue 12).

Measured on the tiny model, its text encoder does not carry the motion: four prompts naming four motions
gave the motion asked for in 0-9% of clips (chance 25%), after a retrain on measured motion captions
too, and two prompts differed less than two seeds. Starting the sampler from the sticker already moving
(SDEdit) did not help either: the model smears a sticker it has to move far (measured: detail 0.86 ->
0.65, colour blobs in the far frames).

So a clip is split in two, as stickers are usually animated: the global motion (bouncing, sliding,
spinning, rocking, pulsing, squash-and-stretch, swaying, waving, nodding, ... with 'gently', 'wildly',
'slowly', 'quickly') is the exact transform the prompt names (motion/words.prompt_request ->
motion/procedural.requested_components: the transforms that make and caption the procedural training
clips), and the video model supplies everything else: the sticker's look in every frame and its own
local motion. The model's frames, decoded at full size, are moved by that transform frame by frame
(frame `cond` stays put), so nothing is resampled at 128 px and the loop stays seamless (whole cycles
per loop). A sticker with no room to move on its canvas (most fill it) is drawn smaller, down to 0.7 of
its size, so the motion keeps the size asked for and stays in view (`room`, the default; every frame,
the conditioning frame too, is then the sticker at that size); without `room`, or past that, the
amplitudes shrink within the range the training clips show.
Prompts that name no motion are left as the model made them; the setting `prompt_motion = False` switches
this step off (sampling/finish.move_as_prompted runs it for both engines).
"""

from __future__ import annotations

import numpy as np

from ..motion.procedural import Component, DrawnAt, move_frames, place_components, requested_components
from ..motion.words import prompt_request
from ..rgba import to_uint8
from .params import draws_smaller  # noqa: F401 (re-exported: the rule lives with the settings)

MOTION_FPS = 8.0  # the speed words are judged at the rate clips play (8 frames = 1 s)


def prompt_components(prompt: str, alpha: np.ndarray, frames: int, room: bool = True
                      ) -> tuple[list[Component], DrawnAt]:
    """The global motion a prompt names, fitted to a sticker's alpha (H, W) in [0, 1] (([], DrawnAt()) when
    none): with `room`, the sticker is drawn smaller so the motion keeps its size and stays on the canvas
    (procedural.shrink_to_move); without, the motion shrinks to fit (procedural.fit_in_view)."""
    req = prompt_request(prompt)
    return place_components(requested_components(req.words, req.amplitude, req.speed, frames, MOTION_FPS),
                            alpha, frames, room)


def move_by_prompt(frames: np.ndarray, prompt: str, cond: int, room: bool = True) -> np.ndarray | None:
    """Straight RGBA frames (T, H, W, 4) in [0, 1] -> the same with the prompt's global motion, or None
    when the prompt names no motion."""
    comps, placed = prompt_components(prompt, frames[cond, ..., 3], frames.shape[0], room)
    return move_frames(frames, comps, cond, placed) if comps else None


def drawn_sticker(rgba: np.ndarray, prompt: str, frames: int, room: bool = True) -> tuple[np.ndarray, float]:
    """The sticker (H, W, 4) uint8 as a clip's conditioning frame draws it (smaller where the prompt's
    motion needed room), and the scale it is drawn at: the reference for measuring what a clip kept."""
    still = rgba.astype(np.float32)[None] / 255.0  # (1, H, W, 4): one frame, the conditioning one
    comps, placed = prompt_components(prompt, still[0, ..., 3], frames, room)
    if placed.identity:
        return rgba, 1.0
    return to_uint8(move_frames(still, comps, 0, placed)[0]), placed.scale
