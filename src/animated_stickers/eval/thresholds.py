"""Pass/fail thresholds of the automatic measures, with the numbers and where they came from.

The numbers live in thresholds.json beside this file (report: CALIBRATION.md), written by
`stickers eval calibrate --install`
(real held-out Fluent clips vs deliberately broken versions; see calibrate.py). A missing value (None)
is always a failure: an unreadable output or an undefined measure cannot pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UserError
from .measures import CRITERIA, CRITERION_NAMES

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.json")


@dataclass(frozen=True)
class Threshold:
    """Pass when value >= threshold (higher_is_better) or value <= threshold (otherwise)."""

    threshold: float
    higher_is_better: bool
    source: str = ""

    def passes(self, value: float | None) -> bool:
        """The pass/fail decision; None and NaN fail."""
        if value is None or math.isnan(value):
            return False
        return value >= self.threshold if self.higher_is_better else value <= self.threshold


@dataclass(frozen=True)
class Band:
    """Pass when low <= value (<= high, when there is a high end): the motion criteria (motionref.py),
    whose thresholds sit in thresholds.json's "motion" section (motion_calibrate.py)."""

    low: float
    high: float | None = None
    source: str = ""

    def passes(self, value: float | None) -> bool:
        """None and NaN fail."""
        if value is None or math.isnan(value):
            return False
        return value >= self.low and (self.high is None or value <= self.high)

    def to_json(self) -> dict:
        return {"low": self.low, "high": self.high, "source": self.source}


def load_motion_section(path: str | Path | None = None) -> dict:
    """thresholds.json's "motion" section: {"criteria": {name: Band}, "artist": {...}, "meta": {...}}."""
    from .motionref import MOTION_CRITERIA

    path = Path(path) if path else THRESHOLDS_FILE
    try:
        section = json.loads(path.read_text()).get("motion")
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        section = None
    if not isinstance(section, dict) or not isinstance(section.get("criteria"), dict):
        raise UserError(f"'{path}': no motion thresholds (run `stickers eval calibrate-motion --install`)")
    bands = {}
    for name in MOTION_CRITERIA:
        entry = section["criteria"].get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("low"), (int, float)) or \
                not isinstance(entry.get("high", None), (int, float, type(None))):
            raise UserError(f"'{path}': motion criterion '{name}' needs a numeric 'low' (and 'high' or null)")
        bands[name] = Band(float(entry["low"]), None if entry.get("high") is None else float(entry["high"]),
                           str(entry.get("source", "")))
    return {"criteria": bands, "artist": section.get("artist", {}), "meta": section.get("meta", {})}


def load_thresholds(path: str | Path | None = None) -> dict[str, Threshold]:
    """Thresholds per criterion from `path` (default: the calibrated package file)."""
    path = Path(path) if path else THRESHOLDS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"'{path}': thresholds file not found (run `stickers eval calibrate --install`)"
        ) from None
    except json.JSONDecodeError as e:
        raise UserError(f"'{path}': not valid JSON ({e.msg} at line {e.lineno})") from None
    table = data.get("criteria", data) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise UserError(f"'{path}': expected an object with 'criteria': {{name: {{threshold, ...}}}}")
    out: dict[str, Threshold] = {}
    for c in CRITERIA:
        entry = table.get(c.name)
        if not isinstance(entry, dict) or not isinstance(entry.get("threshold"), (int, float)):
            raise UserError(f"'{path}': criterion '{c.name}' needs a numeric 'threshold'")
        out[c.name] = Threshold(float(entry["threshold"]), c.higher_is_better, str(entry.get("source", "")))
    return out


def thresholds_to_json(thresholds: dict[str, Threshold], meta: dict) -> dict:
    """The JSON document `load_thresholds` reads (criteria in the canonical order)."""
    return {"meta": meta, "criteria": {n: asdict(thresholds[n]) for n in CRITERION_NAMES if n in thresholds}}
