"""Keying a solid background to alpha for videos without transparency."""

import numpy as np

from animated_stickers.keying import detect_background, ensure_alpha, has_alpha, key_background


def disc_on(bg, size=48, frames=4):
    yy, xx = np.mgrid[:size, :size]
    v = np.empty((frames, size, size, 4), np.uint8)
    v[...] = (*bg, 255)
    for t in range(frames):
        inside = (xx - 16 - 3 * t) ** 2 + (yy - 24) ** 2 < 10 ** 2
        v[t][inside] = (220, 30, 40, 255)
    return v, inside


def test_green_screen_is_keyed_and_subject_kept():
    video, inside = disc_on((0, 200, 0))
    info = detect_background(video)
    assert info.solid and info.color == (0, 200, 0)
    keyed, used = ensure_alpha(video)
    assert used is not None and used.color == (0, 200, 0)
    alpha = keyed[-1, ..., 3]
    assert (alpha[~inside] == 0).all() and (alpha[inside] == 255).all()
    assert (keyed[-1][inside][:, :3] == (220, 30, 40)).all()  # subject colours untouched
    assert has_alpha(keyed) and not has_alpha(video)


def test_edge_pixels_are_unmixed_from_background():
    bg, fg = np.array([255, 255, 255]), np.array([0, 0, 200])
    mixed = (0.5 * fg + 0.5 * bg).round().astype(np.uint8)  # a half-covered edge pixel on white
    v = np.empty((1, 8, 8, 4), np.uint8)
    v[...] = (255, 255, 255, 255)
    v[0, 4, 4, :3] = mixed
    out = key_background(v, (255, 255, 255), tolerance=0.0, softness=1.0)  # pure colour-to-alpha
    a = out[0, 4, 4, 3] / 255
    assert abs(a - 0.5) < 0.01
    assert np.abs(out[0, 4, 4, :3].astype(int) - fg).max() <= 3  # the blue is recovered
    # recomposited over the same background, the pixel looks as before
    recomposed = out[0, 4, 4, :3] * a + bg * (1 - a)
    assert np.abs(recomposed - mixed).max() <= 3
    assert out[0, 0, 0, 3] == 0


def test_busy_background_is_not_keyed():
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (3, 32, 32, 4), dtype=np.uint8)
    video[..., 3] = 255
    frames, used = ensure_alpha(video)
    assert used is None and frames is video


def test_existing_alpha_is_left_alone():
    video, _ = disc_on((0, 200, 0))
    video[..., 3] = 128
    frames, used = ensure_alpha(video)
    assert used is None and frames is video
