"""Motion buckets: fitted from quantiles, monotone score -> fps, JSON round trip."""

import numpy as np
import pytest

from animated_stickers.data.buckets import MotionBuckets


def test_fit_equal_count_buckets_and_monotone_fps():
    scores = np.random.default_rng(0).gamma(2.0, 0.2, size=1000)
    b = MotionBuckets.fit(scores, fps=(4, 6, 8, 12), score="mv")
    assert len(b.edges) == 3 and b.counts == b.histogram(scores)
    assert all(220 <= c <= 280 for c in b.counts)
    fps = [b.fps_for(s) for s in np.sort(scores)]
    assert fps == sorted(fps) and fps[0] == 4 and fps[-1] == 12
    assert b.fps_for(None) == 8.0  # unknown score -> middle bucket


def test_table_and_edges():
    b = MotionBuckets.from_table([(0.0, 4), (0.2, 8), (0.5, 12)], score="frame_diff")
    assert b.edges == [0.2, 0.5]
    assert [b.fps_for(s) for s in (0.0, 0.19, 0.2, 0.49, 0.5, 9.0)] == [4, 4, 8, 8, 12, 12]
    assert "bucket 1" in b.describe() and "8 fps" in b.describe()


def test_json_round_trip(tmp_path):
    b = MotionBuckets.fit([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], fps=(4, 8))
    again = MotionBuckets.load(b.save(tmp_path / "buckets.json"))
    assert again == b


def test_bad_buckets_are_rejected():
    with pytest.raises(ValueError, match="len\\(fps\\) == len\\(edges\\) \\+ 1"):
        MotionBuckets(edges=[0.1, 0.2], fps=[4, 8])
    with pytest.raises(ValueError, match="ascending"):
        MotionBuckets(edges=[0.3, 0.2], fps=[4, 8, 12])
    with pytest.raises(ValueError, match="no finite scores"):
        MotionBuckets.fit([])
