"""Prompt motion (issue 12): the prompt's motion words -> the exact global motion of the model's frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from animated_stickers.config import SamplingConfig
from animated_stickers.motion.procedural import (
    MIN_ROOM_SCALE,
    animate_canvas,
    fit_in_view,
    move_frames,
    requested_components,
)
from animated_stickers.motion.words import describe_motion, dominant_motion, prompt_request
from animated_stickers.sampling.finish import move_as_prompted
from animated_stickers.sampling.prompt_motion import prompt_components
from sampling_support import one_thread, sticker, tiny_model  # noqa: F401 (autouse fixture)


def face_canvas(size: int = 128) -> np.ndarray:
    """A face-like sticker (a disc with eyes and a mouth) with room to move on a transparent canvas."""
    y, x = np.mgrid[:size, :size] / size
    img = np.zeros((size, size, 4), np.uint8)
    disc = (x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.3 ** 2
    img[disc] = (250, 200, 40, 255)
    for ex in (0.4, 0.6):
        img[(x - ex) ** 2 + (y - 0.42) ** 2 < 0.04 ** 2] = (40, 30, 20, 255)
    img[(np.abs(y - 0.62) < 0.02) & (np.abs(x - 0.5) < 0.12)] = (160, 40, 40, 255)
    img[(x - 0.72) ** 2 + (y - 0.28) ** 2 < 0.09 ** 2] = (90, 60, 200, 255)  # an ear: rotation is visible
    return img


def test_prompt_request_finds_every_motion_word_and_its_adverbs():
    r = prompt_request("a cat bouncing quickly while spinning around")
    assert r.words == ("bouncing", "spinning") and r.speed == "fast" and r.amplitude == ""
    assert prompt_request("hopping up and down").words == ("hopping",)  # the direction alone is weak
    assert prompt_request("up and down").words == ("bouncing",)
    assert prompt_request("gently rocking, slowly").amplitude == "gentle"
    assert prompt_request("gently rocking, slowly").speed == "slow"
    assert prompt_request("grinning face").words == ()


def still_clip(canvas: np.ndarray, frames: int = 8) -> np.ndarray:
    """A clip (T, H, W, 4) float in [0, 1] of the canvas not moving (what the model gives back, ideally)."""
    return np.repeat(canvas[None].astype(np.float32) / 255.0, frames, axis=0)


@pytest.mark.parametrize("word", ["bouncing", "hopping", "sliding", "spinning", "pulsing", "rocking", "wobbling",
                                  "swaying", "waving", "shaking"])
def test_the_moved_clip_does_the_word_the_estimator_measures(word):
    canvas = face_canvas()
    comps, room = prompt_components(f"a face {word}", canvas[..., 3] / 255.0, 8)
    assert room.identity  # the face has room to move: drawn where it is
    moved = move_frames(still_clip(canvas), comps, 3, room)
    assert moved.shape == (8, 128, 128, 4)
    assert np.array_equal(moved[3], still_clip(canvas)[3])  # the conditioning frame is the sticker, untouched
    clip = np.round(moved * 255).astype(np.uint8)
    assert dominant_motion(describe_motion(clip, 8.0, 3)) == word


def test_at_rest_every_motion_is_the_sticker_itself():
    canvas = face_canvas(64)
    for word in ("bouncing", "spinning", "pulsing", "wobbling", "waving"):
        comps = requested_components((word,), num_frames=8)
        assert np.array_equal(animate_canvas(canvas, comps, 8)[0], canvas)  # a bounce lands unsquashed


def test_the_motion_is_a_seamless_loop_at_any_length():
    canvas = face_canvas(96)
    for n in (8, 16):
        comps = requested_components(("spinning",), num_frames=n)
        loop = animate_canvas(canvas, comps, n).astype(float)
        steps = np.abs(np.diff(loop, axis=0)).mean(axis=(1, 2, 3))
        seam = np.abs(loop[-1] - loop[0]).mean()
        assert seam <= 1.5 * np.median(steps)


def full_canvas(size: int = 128) -> np.ndarray:
    """A flat sticker that fills its canvas edge to edge (Twemoji and Noto mostly do): few corners."""
    y, x = np.mgrid[:size, :size] / size
    img = np.zeros((size, size, 4), np.uint8)
    img[2:-2, 2:-2] = (200, 80, 80, 255)
    img[10:40, 10:40] = (30, 40, 120, 255)  # a canton
    img[(x - 0.7) ** 2 + (y - 0.7) ** 2 < 0.12 ** 2] = (240, 220, 60, 255)  # a sun, off-centre
    img[(np.abs(y - 0.45) < 0.03) & (x > 0.4)] = (240, 240, 240, 255)  # a band
    return img


def test_without_room_a_sticker_that_fills_its_canvas_moves_less_but_still_moves():
    roomy = face_canvas(128)
    full = np.zeros((128, 128, 4), np.uint8)
    full[4:124, 4:124] = (200, 80, 80, 255)
    a_roomy = prompt_components("sliding left and right", roomy[..., 3] / 255.0, 8, room=False)[0][0].amp
    a_full, room = prompt_components("sliding left and right", full[..., 3] / 255.0, 8, room=False)
    lo = requested_components(("sliding",), amplitude="gentle")[0].amp
    assert room.identity and a_full[0].amp < a_roomy and a_full[0].amp >= 0.12 - 1e-9 and lo > 0
    kept = fit_in_view(requested_components(("sliding",)), roomy[..., 3] / 255.0, 8)
    assert kept[0].amp == requested_components(("sliding",))[0].amp  # room to move: unchanged


@pytest.mark.parametrize("word", ["bouncing", "sliding", "spinning", "pulsing"])
def test_with_room_a_full_canvas_sticker_is_drawn_smaller_and_does_the_whole_motion(word):
    full = full_canvas()
    comps, room = prompt_components(f"a flag {word}", full[..., 3] / 255.0, 8)
    assert comps == requested_components((word,))  # the amplitude asked for, not shrunk
    assert MIN_ROOM_SCALE <= room.scale < 0.97
    moved = move_frames(still_clip(full), comps, 3, room)
    alpha = moved[..., 3]
    for edge in (alpha[:, 0], alpha[:, -1], alpha[:, :, 0], alpha[:, :, -1]):  # (T, W) or (T, H)
        assert edge.max() <= max(0.05, edge[3].max() + 0.02)  # no frame pushes past an edge it did not touch
    assert alpha[3].sum() < 0.97 * full[..., 3].sum() / 255  # the sticker's frame is the sticker, smaller
    clip = np.round(moved * 255).astype(np.uint8)
    assert dominant_motion(describe_motion(clip, 8.0, 3)) == word  # edges touching the canvas are tracked


def test_a_bounce_with_room_stands_on_the_floor():
    full = full_canvas()
    comps, room = prompt_components("a flag bouncing", full[..., 3] / 255.0, 8)
    moved = move_frames(still_clip(full), comps, 3, room)
    rows = np.nonzero(moved[3, ..., 3].max(axis=1) > 0.5)[0]
    assert rows.max() >= 123  # at rest it stands where it stood (shrunk towards its feet, not its centre)
    assert all(np.nonzero(f[..., 3].max(axis=1) > 0.5)[0].max() <= rows.max() for f in moved)  # it only rises


def test_room_is_off_when_the_exact_sticker_is_pasted():
    from animated_stickers.config import SamplingConfig
    from animated_stickers.sampling.prompt_motion import draws_smaller

    assert draws_smaller(SamplingConfig()) and not draws_smaller(SamplingConfig(room=False))
    assert not draws_smaller(SamplingConfig(paste_input=True))  # a pasted full-size frame would jump once a loop


def test_no_motion_word_leaves_the_frames_alone():
    canvas = face_canvas(64)
    video = still_clip(canvas)[None]  # (1, T, H, W, 4)
    assert prompt_components("grinning face", canvas[..., 3] / 255.0, 8)[0] == []
    assert move_as_prompted(video, ["grinning face"], 3, SamplingConfig()) is video
    assert requested_components(("still",)) == []


def test_speed_and_amplitude_words_set_the_motion():
    slow, normal, fast = (requested_components(("rocking",), speed=s, num_frames=16)[0].k for s in ("slow", "", "fast"))
    assert slow < normal < fast  # 16 frames at 8 fps: 0.5, 1 and 2 Hz, whole cycles per loop
    assert requested_components(("rocking",), amplitude="gentle")[0].amp < requested_components(("rocking",))[0].amp
    assert requested_components(("rocking",), amplitude="wild")[0].amp > requested_components(("rocking",))[0].amp


def test_the_pipeline_moves_named_motions_and_can_be_switched_off():
    from animated_stickers.sampling.pipeline import AnimatePipeline

    pipe = AnimatePipeline(tiny_model())
    params = dataclasses.replace(pipe.model.sampling, steps=3, image_guidance=1.0, text_guidance=1.0)
    im = sticker(64, 64)
    on = pipe.animate([im, im], ["sliding left and right", "a plain sticker"], params)
    assert "prompt_motion_s" in pipe.stats
    off = pipe.animate([im, im], ["sliding left and right", "a plain sticker"],
                       dataclasses.replace(params, prompt_motion=False))
    arr = lambda seq: np.stack([np.asarray(f, np.int16) for f in seq])  # noqa: E731
    kept = pipe.animate([im], ["sliding left and right"], dataclasses.replace(params, room=False))
    assert np.array_equal(arr(on[1]), arr(off[1]))  # no motion word: the model's frames as they were
    assert np.array_equal(arr(kept[0])[3], arr(off[0])[3])  # without room the conditioning frame stays put
    assert np.abs(arr(kept[0]) - arr(off[0])).max() > 50  # the other frames slid
    # The ellipse fills 80% of its canvas: with room (the default) it is drawn smaller, every frame.
    assert arr(on[0])[3, ..., 3].sum() < 0.95 * arr(off[0])[3, ..., 3].sum()
