"""Motion bucketing (paper 3.1.1): a mapping from a video's motion score to its sampling fps.

Videos with more motion are sampled at a higher fps (frames closer together), videos with little motion
at a lower fps, so that every training clip shows a similar amount of motion. Buckets are fitted from
score quantiles (equal-count buckets) or given as a table, written to JSON and read back, and printed
as a table for a person to check (together with `stickers data preview`, which shows each bucket).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text

DEFAULT_FPS: tuple[float, ...] = (4.0, 6.0, 8.0, 12.0)  # low motion -> low fps ... high motion -> high fps
SCORE_NAMES = ("mv", "frame_diff")


@dataclass
class MotionBuckets:
    """Score edges (ascending, len k-1) splitting scores into k buckets, and the sampling fps of each."""

    edges: list[float]
    fps: list[float]
    score: str = "mv"  # which motion score the edges refer to: 'mv' or 'frame_diff'
    counts: list[int] = field(default_factory=list)  # videos per bucket when fitted (for inspection)

    def __post_init__(self) -> None:
        if len(self.fps) != len(self.edges) + 1:
            raise ValueError(f"motion buckets need len(fps) == len(edges) + 1, got {len(self.fps)} fps "
                             f"and {len(self.edges)} edges")
        if any(b < a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"motion bucket edges must be ascending, got {self.edges}")
        if any(f <= 0 for f in self.fps):
            raise ValueError(f"motion bucket fps must be positive, got {self.fps}")
        if self.score not in SCORE_NAMES:
            raise ValueError(f"motion score '{self.score}': expected one of {', '.join(SCORE_NAMES)}")

    @classmethod
    def fit(cls, scores: Iterable[float], fps: Sequence[float] = DEFAULT_FPS, score: str = "mv") -> MotionBuckets:
        """Equal-count buckets: edges at the 1/k, 2/k, ... quantiles of `scores`, one per fps value."""
        values = np.asarray([s for s in scores if s is not None and np.isfinite(s)], dtype=np.float64)
        if values.size == 0:
            raise ValueError("cannot fit motion buckets: no finite scores")
        k = len(fps)
        edges = [float(q) for q in np.quantile(values, [i / k for i in range(1, k)])]
        buckets = cls(edges=edges, fps=[float(f) for f in fps], score=score)
        buckets.counts = buckets.histogram(values)
        return buckets

    @classmethod
    def from_table(cls, table: Sequence[tuple[float, float]], score: str = "mv") -> MotionBuckets:
        """From rows (lower score bound, fps) sorted by bound; the first bound is ignored (-inf)."""
        rows = sorted(table)
        return cls(edges=[float(lo) for lo, _ in rows[1:]], fps=[float(f) for _, f in rows], score=score)

    def bucket_of(self, score: float) -> int:
        """Index of the bucket holding `score` (bucket i covers edges[i-1] <= score < edges[i])."""
        return bisect.bisect_right(self.edges, score)

    def fps_for(self, score: float | None) -> float:
        """Sampling fps for a video with this motion score (the middle bucket when the score is unknown)."""
        if score is None or not np.isfinite(score):
            return self.fps[len(self.fps) // 2]
        return self.fps[self.bucket_of(score)]

    def histogram(self, scores: Iterable[float]) -> list[int]:
        """How many of `scores` fall into each bucket."""
        counts = [0] * len(self.fps)
        for s in scores:
            counts[self.bucket_of(s)] += 1
        return counts

    def describe(self) -> str:
        """A human-readable table: bucket, score range, fps, count."""
        lines = [f"motion buckets on score '{self.score}':"]
        bounds = [-np.inf, *self.edges, np.inf]
        for i, f in enumerate(self.fps):
            n = f"  n={self.counts[i]}" if self.counts else ""
            lines.append(f"  bucket {i}: {bounds[i]:>8.3f} <= score < {bounds[i + 1]:<8.3f} -> {f:g} fps{n}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MotionBuckets:
        return cls(edges=list(d["edges"]), fps=list(d["fps"]), score=d.get("score", "mv"),
                   counts=list(d.get("counts", [])))

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> MotionBuckets:
        """Read buckets written by `save` (or a manifest's 'buckets' entry)."""
        d = json.loads(Path(path).read_text())
        return cls.from_dict(d.get("buckets", d))
