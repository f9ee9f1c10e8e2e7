"""Motion scores: more motion gives a higher score, for both the frame-difference and H.264 MV scores."""

import numpy as np
import pytest

from animated_stickers.data.motion import frame_difference_score, motion_scores, motion_vector_score


def moving_disc(speed_px: float, frames: int = 16, size: int = 96, alpha: bool = True) -> np.ndarray:
    """A textured disc moving right `speed_px` per frame on a transparent (or white) canvas."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((frames, size, size, 4), np.uint8)
    if not alpha:
        out[...] = 255
    for t in range(frames):
        cx, cy = 30 + speed_px * t, size / 2
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < 18 ** 2
        out[t][inside] = np.stack([(xx * 7 % 256), (yy * 5 % 256), 128 + 0 * xx, 255 + 0 * xx], -1)[inside]
    return out


@pytest.mark.parametrize("alpha", [True, False])
def test_scores_order_by_motion(alpha):
    still, slow, fast = (moving_disc(s, alpha=alpha) for s in (0.0, 1.0, 3.0))
    fd = [frame_difference_score(v, 24.0) for v in (still, slow, fast)]
    mv = [motion_vector_score(v, 24.0) for v in (still, slow, fast)]
    assert fd[0] == pytest.approx(0.0, abs=1e-6) and fd[0] < fd[1] < fd[2]
    assert mv[0] < mv[1] < mv[2]
    if alpha:  # vectors measure displacement per sticker pixel: 3 px/frame at 96 px is 4 px at 128 px
        assert 3.0 < mv[2] < 5.5


def test_alpha_only_motion_counts():
    """A sticker whose colour matches the grey backdrop still moves: its alpha changes."""
    v = np.zeros((8, 64, 64, 4), np.uint8)
    for t in range(8):
        v[t, 20:40, 4 * t:4 * t + 20] = (128, 128, 128, 255)
    assert frame_difference_score(v, 24.0) > 1.0


def test_higher_frame_rate_is_resampled_to_reference():
    base = moving_disc(2.0, frames=16)
    doubled = np.repeat(base, 2, axis=0)  # same motion, recorded at 48 fps
    assert frame_difference_score(doubled, 48.0) == pytest.approx(frame_difference_score(base, 24.0), rel=1e-5)


def test_single_frame_scores_zero():
    s = motion_scores(moving_disc(0.0, frames=1), 24.0)
    assert s.frame_diff == 0.0 and s.mv == 0.0
