"""Unseen-style test sets: Twemoji and Noto Color Emoji stills, reserved for evaluation (issue 11).

Neither style may ever reach training, in any form (the `emoji-datasource-twitter`/`-google` sheets
included), so they are fetched apart from the training packages, into `<cache>/test-only/`
(data/test_sets.py), and `assert_not_training_source` rejects their files wherever data is prepared
(data/sources.py's item builders call it on every item). This module imports nothing of data/, so every
data module can call the guard.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from ..errors import UserError

TEST_ONLY_PACKAGES = {  # package -> pinned version; never in data.sources.NPM_PACKAGES
    "@twemoji/svg": "15.0.0",  # one SVG per emoji, named by code points
    "@svgmoji/noto": "3.2.0",  # Noto Color Emoji SVGs in one sprite (sprites/all.svg)
}
TEST_STYLES = {"twemoji": "@twemoji/svg", "noto": "@svgmoji/noto"}
TEST_LICENSES = {
    "twemoji": "CC BY 4.0 graphics (Twemoji, https://github.com/jdecked/twemoji); npm @twemoji/svg",
    "noto": "Apache 2.0 (Noto Emoji, https://github.com/googlefonts/noto-emoji); npm @svgmoji/noto",
}
TEST_ONLY_DIR = "test-only"  # <cache>/test-only/{npm,src,rendered}: outside every training source listing
# A path component that names a Twemoji/Noto package or copy: 'twemoji-svg-15.0.0', '@twemoji', 'noto-emoji',
# 'svgmoji-noto-3.2.0', 'emoji-datasource-google-16.0.0'... ('notorious' does not match).
_TEST_ONLY_PART = re.compile(r"^@?(twemoji|noto|svgmoji-(twemoji|noto)|emoji-datasource-(twitter|google))(?![a-z])",
                             re.IGNORECASE)


class TestOnlySourceError(UserError):
    """A Twemoji or Noto file offered as training data."""

    __test__ = False  # not a pytest test class despite the name


def _is_test_only_path(path: str | PurePath) -> bool:
    return any(part == TEST_ONLY_DIR or _TEST_ONLY_PART.match(part) for part in PurePath(path).parts)


def assert_not_training_source(path_or_item: str | PurePath | object) -> None:
    """Raise TestOnlySourceError when a path, data.sources.Item or prepared record (dict) comes from a
    test-only style."""
    if isinstance(path_or_item, (str, PurePath)):
        source, paths = None, [path_or_item]
    else:
        get = path_or_item.get if isinstance(path_or_item, dict) else lambda k: getattr(path_or_item, k, None)
        source, paths = get("source"), [p for p in (get("path"), get("still_path")) if p]
    bad = next((str(p) for p in paths if _is_test_only_path(p)), None)
    if source in TEST_STYLES or bad:
        raise TestOnlySourceError(f"'{bad or source}': Twemoji/Noto are unseen-style test sets; "
                                  "they can never be training data")
