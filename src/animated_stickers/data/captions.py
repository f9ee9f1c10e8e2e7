"""Captions for emoji stickers from their code-point file stems (paper 2.2: captions for in-domain data).

A Fluent file stem such as '1f469-1f3fb-200d-1f692' names the emoji by its code points. The caption is
the CLDR label plus a few CLDR keywords (npm `emojibase-data`, shipped here as a small gzipped table
built by `build_keyword_table`), e.g. "woman firefighter, light skin tone; fire, firetruck, hose".
When an emoji is missing from that table (or the table is absent) the PyPI `emoji` package's name is
used instead, which covers every Fluent stem.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path

KEYWORD_TABLE = Path(__file__).with_name("emoji_keywords.json.gz")
SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))  # Fitzpatrick modifiers 1F3FB-1F3FF
VS16 = 0xFE0F  # emoji presentation selector: optional in file names, so ignored when matching
_TAG_RANGE = range(0xE0020, 0xE007F)  # subdivision-flag tag letters; sequences end with CANCEL TAG
_CANCEL_TAG = 0xE007F
_HEX_STEM = re.compile(r"^[0-9a-fA-F]{1,6}([-_][0-9a-fA-F]{1,6})*$")
_TONE_WORDS = re.compile(r"[ _]?((?:medium-)?(?:light|medium|dark)[ _](?:skin[ _]tone))", re.IGNORECASE)


class CaptionError(ValueError):
    """A stem that is not a sequence of hexadecimal code points."""


@dataclass
class Caption:
    """A natural caption, the keywords for prompt building and the skin-tone-free base emoji key."""

    text: str
    keywords: list[str]
    base: str  # normalised code points without skin tones or FE0F, e.g. '1f469-200d-1f692'
    label: str = ""  # the emoji's name alone, e.g. "woman firefighter, light skin tone"
    emoji: str = ""  # the emoji characters
    source: str = "emojibase"  # where the label came from: 'emojibase' or 'emoji' (PyPI fallback)
    skin_tones: list[str] = field(default_factory=list)


def is_codepoint_stem(stem: str) -> bool:
    """True when `stem` looks like an emoji file stem ('1f600', '0023-fe0f-20e3', '1f3f4-e0067_...')."""
    return bool(_HEX_STEM.match(stem))


def codepoints(stem: str) -> list[int]:
    """Code points of a file stem; '-' or '_' separate them; a tag sequence gets its CANCEL TAG."""
    if not is_codepoint_stem(stem):
        raise CaptionError(f"'{stem}': expected hexadecimal code points separated by '-', e.g. '1f600'")
    cps = [int(part, 16) for part in re.split(r"[-_]", stem)]
    if any(c in _TAG_RANGE for c in cps) and cps[-1] != _CANCEL_TAG:
        cps.append(_CANCEL_TAG)  # Fluent names drop it; the Unicode sequence needs it
    return cps


def normalise(stem: str) -> str:
    """Canonical stem: lower-case hex without leading zeros ('0023-FE0F-20E3' -> '23-fe0f-20e3')."""
    return "-".join(format(c, "x") for c in codepoints(stem))


def base_key(stem: str) -> str:
    """The emoji without skin tones and FE0F, so all tones (and spellings) of one emoji share a key."""
    return "-".join(format(c, "x") for c in codepoints(stem) if c not in SKIN_TONES and c != VS16)


def _match_key(cps: list[int]) -> str:
    return "-".join(format(c, "x") for c in cps if c != VS16)


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    """{'labels': {key: label}, 'tags': {base key: [tags]}} or empty when the table is not shipped."""
    if not KEYWORD_TABLE.is_file():
        return {"labels": {}, "tags": {}}
    with gzip.open(KEYWORD_TABLE, "rt", encoding="utf-8") as f:
        return json.load(f)


def has_keyword_table() -> bool:
    """Whether the CLDR label/keyword table is shipped (else captions use `emoji` names only)."""
    return bool(_table()["labels"])


def _emoji_package_name(chars: str) -> str | None:
    import emoji

    for candidate in (chars, chars.replace("\ufe0f", ""), chars + "\ufe0f"):
        data = emoji.EMOJI_DATA.get(candidate)
        if data:
            name = data["en"].strip(":").replace("_", " ")
            # ':man_running_medium_skin_tone:' -> 'man running, medium skin tone' (CLDR style)
            return _TONE_WORDS.sub(lambda m: ", " + m.group(1).replace("_", " "), name, count=1).replace(
                " ,", ",")
    return None


def _natural(label: str) -> str:
    # CLDR labels put qualifiers after ': ' ('keycap: 1', 'man running: medium skin tone').
    return label.replace(": ", ", ").strip()


def caption_for(stem: str, max_caption_keywords: int = 3) -> Caption:
    """Caption of an emoji file stem; raises CaptionError when the stem is not code points or unknown."""
    cap = _caption_cached(stem, max_caption_keywords)
    return dataclasses.replace(cap, keywords=list(cap.keywords), skin_tones=list(cap.skin_tones))  # callers may edit


@functools.lru_cache(maxsize=8192)
def _caption_cached(stem: str, max_caption_keywords: int) -> Caption:
    cps = codepoints(stem)
    chars = "".join(map(chr, cps))
    table = _table()
    base = base_key(stem)
    label = table["labels"].get(_match_key(cps))
    source = "emojibase"
    if label is None:
        label, source = _emoji_package_name(chars), "emoji"
    if label is None:
        raise CaptionError(f"'{stem}': not a known emoji (checked emojibase-data and the emoji package)")
    label = _natural(label)
    keywords = list(table["tags"].get(base, []))
    label_words = set(re.findall(r"[\w']+", label.lower()))
    shown = [k for k in keywords if k.lower() not in label_words][:max_caption_keywords]
    text = f"{label}; {', '.join(shown)}" if shown else label
    tones = [m.group(1).replace("_", " ") for m in _TONE_WORDS.finditer(label)]
    return Caption(text=text, keywords=keywords, base=base, label=label, emoji=chars, source=source,
                   skin_tones=tones)


def build_keyword_table(emojibase_dir: str | Path, out: str | Path = KEYWORD_TABLE) -> Path:
    """Write the gzipped label/keyword table from an unpacked npm `emojibase-data` package folder."""
    src = Path(emojibase_dir)
    data_json = next((p for p in (src / "en" / "data.json", src / "package" / "en" / "data.json")
                      if p.is_file()), None)
    if data_json is None:
        raise FileNotFoundError(f"'{src}': expected an emojibase-data package with en/data.json")
    labels: dict[str, str] = {}
    tags: dict[str, list[str]] = {}
    for entry in json.loads(data_json.read_text(encoding="utf-8")):
        for item in [entry, *entry.get("skins", [])]:
            cps = [int(h, 16) for h in item["hexcode"].split("-")]
            labels[_match_key(cps)] = item["label"]
        base = base_key(entry["hexcode"])
        tags[base] = sorted(set(tags.get(base, [])) | set(entry.get("tags", [])))
    out = Path(out)
    payload = json.dumps({"source": "emojibase-data " + _package_version(data_json), "labels": labels,
                          "tags": tags}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    with atomic_path(out) as tmp, gzip.GzipFile(tmp, "wb", mtime=0) as f:  # mtime=0: same input, same bytes
        f.write(payload.encode("utf-8"))
    _table.cache_clear()
    _caption_cached.cache_clear()
    return out


def _package_version(data_json: Path) -> str:
    pkg = data_json.parent.parent / "package.json"
    try:
        return json.loads(pkg.read_text())["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


# ---------------------------------------------------------------- training captions (templates)

# Shares of the caption templates: subject + motion, motion only, subject only (paper 2.2 enriches
# captions; here the motion part is measured, motion/words.py, or exact for procedural clips).
CAPTION_MIX = (0.6, 0.2, 0.2)


def motion_text(meta: dict, rng) -> str:
    """The motion phrase of a prepared sample: exact for procedural clips, else from the measured motion."""
    if meta.get("procedural_motion"):
        from ..motion.procedural import exact_motion_phrase

        return exact_motion_phrase(meta["procedural_motion"], meta.get("procedural_seed", 0),
                                   meta.get("procedural_frames", 8), meta.get("fps", 12.0), rng)
    if meta.get("motion"):
        from ..motion.words import MotionDescription, motion_phrase

        return motion_phrase(MotionDescription.from_dict(meta["motion"]), rng)
    return ""


def training_caption(meta: dict, rng, mix: tuple[float, float, float] = CAPTION_MIX) -> str:
    """A caption drawn from the templates: 'name, motion' / 'motion' / 'subject'. The name is the emoji's
    CLDR label (short, so the motion phrase survives a text encoder's token limit); the subject alone is
    the full caption (label; keywords) or the given caption."""
    subject = meta.get("subject") or meta.get("caption") or ""
    name = meta.get("label") or subject
    motion = motion_text(meta, rng)
    if not motion:
        return subject
    if not subject:
        return motion
    u = rng.random() * sum(mix)
    if u < mix[0]:
        return f"{name}, {motion}"
    if u < mix[0] + mix[1]:
        return motion
    return subject


# Captions of the learned motion model (issue 28): the emoji's name plus the motion measured in its clip
# (motion/words.py), worded in varied templates so the text encoder, not one fixed pattern, carries both.
# '{n}' is the name (CLDR label), '{m}' the measured motion phrase. The weights favour name + motion: the
# name says which parts an emoji moves (a hand waves, a runner runs), the phrase how.
MOTION_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("{n}, {m}", 3.0), ("{n} {m}", 2.0), ("a {n} {m}", 1.5), ("the {n} sticker, {m}", 1.0),
    ("animated {n}, {m}", 1.0), ("{m}: {n}", 0.7), ("{n} emoji {m}", 1.0), ("{n} sticker that is {m}", 0.7),
    ("{m}", 0.6), ("{n}", 1.2), ("animated {n}", 0.5), ("a moving {n} sticker", 0.4),
)


def motion_model_caption(meta: dict, rng) -> str:
    """A training caption for the motion model from a prepared sample: a weighted template over the
    emoji's name (`label`) and the measured motion phrase (exact for procedural clips)."""
    name = meta.get("label") or meta.get("subject") or meta.get("caption") or ""
    motion = motion_text(meta, rng)
    # A procedural clip's motion was drawn at random, not by its name: its caption always says it, so the
    # name alone keeps meaning the artist's motion of that emoji.
    exact = bool(meta.get("procedural_motion")) and bool(motion)
    choices = [(t, w) for t, w in MOTION_TEMPLATES
               if ("{n}" not in t or name) and ("{m}" in t if exact else ("{m}" not in t or motion))] or [("{n}", 1.0)]
    u = rng.random() * sum(w for _, w in choices)
    for template, weight in choices:
        u -= weight
        if u < 0:
            break
    return template.format(n=name, m=motion).strip()
