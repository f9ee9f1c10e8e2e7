"""Three automatic raters for `stickers hitl select --auto`, and agreement between raters.

Each rater looks at the same judgment of a candidate (the calibrated criteria, eval/auto.py, and
the prompt-motion relevance, eval/relevance.py) with its own weights and thresholds, and says "I would
share it" or not, like one annotator ticking candidates (paper 2.3). The panel keeps what 2 of 3 choose.
  auto-strict     every criterion (the nine and blobs) passes at the calibrated thresholds
  auto-motion     motion criteria (existence, motion curves, looping) count three times, the measured
                  dominant motion matching the prompt's word counts twice; 85 % of the weight must pass
                  (so a candidate without motion never passes, one other criterion may fail)
  auto-relevance  thresholds relaxed by 25 %, 7 of 9 criteria with existence (visible motion) among them,
                  and a prompt that names a motion must get it among the measured motion words
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..eval.thresholds import Threshold

Judgment = Mapping  # {"criteria": {name: {"value": float | None, ...}}, "motion": {prompted, measured, words}?}


@dataclass(frozen=True)
class Rater:
    name: str
    min_score: float  # weighted share of passes needed (1.0: every criterion)
    weights: dict[str, float] = field(default_factory=dict)  # criterion -> weight (default 1)
    relevance: str = "ignore"  # ignore | score (dominant motion == prompted, weighted) | require (word measured)
    relevance_weight: float = 0.0
    threshold_scale: float = 1.0  # > 1 relaxes every threshold by that factor
    must_pass: tuple[str, ...] = ()  # criteria that veto on their own

    def passes(self, judgment: Judgment, thresholds: Mapping[str, Threshold]) -> dict[str, bool]:
        """Pass/fail per criterion under this rater's (scaled) thresholds."""
        out = {}
        for name, th in thresholds.items():
            t = th.threshold / self.threshold_scale if th.higher_is_better else th.threshold * self.threshold_scale
            out[name] = Threshold(t, th.higher_is_better).passes(judgment["criteria"][name]["value"])
        return out

    def accepts(self, judgment: Judgment, thresholds: Mapping[str, Threshold]) -> bool:
        """Would this rater share the candidate?"""
        passed = self.passes(judgment, thresholds)
        if not all(passed[n] for n in self.must_pass):
            return False
        total = sum(self.weights.get(n, 1.0) for n in passed)
        score = sum(self.weights.get(n, 1.0) for n, ok in passed.items() if ok)
        motion = judgment.get("motion") or {}
        if motion and self.relevance == "score":
            total += self.relevance_weight
            score += self.relevance_weight * (motion["measured"] == motion["prompted"])
        if motion and self.relevance == "require" and motion["prompted"] not in motion.get("words", []):
            return False
        return score >= self.min_score * total - 1e-9


RATERS: tuple[Rater, ...] = (
    Rater("auto-strict", 1.0),
    Rater("auto-motion", 0.85, {"existence": 3.0, "motion_curves": 3.0, "looping": 3.0}, "score", 2.0),
    Rater("auto-relevance", 7 / 9, relevance="require", threshold_scale=1.25, must_pass=("existence",)),
)


def kept_by_majority(votes: Sequence[bool], min_votes: int = 2) -> bool:
    """The paper's rule: kept when at least `min_votes` (2 of 3) raters chose it."""
    return sum(votes) >= min_votes


def agreement(ratings: Sequence[Sequence[bool]]) -> dict:
    """Agreement over candidates, each rated chosen/not by the same number m of raters.

    pairwise: the share of rater pairs that agree, averaged over candidates; fleiss_kappa: that share
    corrected for chance (Fleiss 1971), None when every rating is the same (no variation to agree on)."""
    rows = [list(r) for r in ratings if len(r) >= 2]
    if not rows:
        return {"n": 0, "raters": 0, "pairwise": None, "fleiss_kappa": None, "chosen_share": None}
    m = len(rows[0])
    rows = [r for r in rows if len(r) == m]
    n = len(rows)
    yes = [sum(r) for r in rows]
    # P_i: agreeing pairs over all pairs, with n_yes and n_no raters in the two categories.
    p_i = [(y * (y - 1) + (m - y) * (m - y - 1)) / (m * (m - 1)) for y in yes]
    p_bar = sum(p_i) / n
    p_yes = sum(yes) / (n * m)
    p_e = p_yes**2 + (1 - p_yes) ** 2
    kappa = None if math.isclose(p_e, 1.0) else (p_bar - p_e) / (1 - p_e)
    return {"n": n, "raters": m, "pairwise": p_bar, "fleiss_kappa": kappa, "chosen_share": p_yes}
