"""Procedural motions of stills: seamless loops, real motion, captions naming the motion."""

import numpy as np
import pytest

from animated_stickers.data.motion import frame_difference_score
from animated_stickers.motion.procedural import MOTIONS, animate_still, motion_caption, pick_motions


def still(size=40):
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size, 4), np.uint8)
    inside = (xx - 20) ** 2 + (yy - 18) ** 2 < 14 ** 2
    img[inside] = (250, 200, 30, 255)
    img[(xx - 15) ** 2 + (yy - 14) ** 2 < 9] = (20, 20, 20, 255)  # an eye: makes spin visible
    return img


@pytest.mark.parametrize("motion", sorted(MOTIONS))
def test_motion_loops_and_moves(motion):
    n = 12
    frames = animate_still(still(), motion, size=48, num_frames=n)
    assert frames.shape == (n, 48, 48, 4) and frames.dtype == np.uint8
    # frame n would be frame 0 again: generate 2n frames of the same motion with twice the loop length?
    # Simpler invariant: phase 0 is the rest pose for affine motions, and the loop closes smoothly:
    # the last->first step is no bigger than the largest step inside the loop.
    steps = [np.abs(frames[(t + 1) % n].astype(int) - frames[t].astype(int)).mean() for t in range(n)]
    assert steps[-1] <= max(steps[:-1]) * 1.02  # bilinear sampling: steps equal in theory differ by <1%
    assert frame_difference_score(frames, 24.0) > 0.3  # it really moves
    assert frames[..., 3].max() == 255 and frames[0, 0, 0, 3] == 0  # RGBA kept, corners transparent


def test_same_seed_same_frames_and_captions():
    a = animate_still(still(), "wobble", size=32, num_frames=6, seed=3)
    b = animate_still(still(), "wobble", size=32, num_frames=6, seed=3)
    assert np.array_equal(a, b)
    assert motion_caption("grinning face", "bounce") == "grinning face, bouncing up and down"
    assert pick_motions("k", 3) == pick_motions("k", 3) and len(set(pick_motions("k", 3))) == 3


def test_unknown_motion_and_empty_still():
    with pytest.raises(ValueError, match="expected one of"):
        animate_still(still(), "teleport", size=32, num_frames=4)
    with pytest.raises(ValueError, match="fully transparent"):
        animate_still(np.zeros((8, 8, 4), np.uint8), "spin", size=32, num_frames=4)
