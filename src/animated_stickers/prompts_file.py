"""prompts.json: the one parser for a folder's list of {"image": "name.png", "prompt": "..."} entries.

Read by `stickers animate --inputs`, `stickers eval auto` and the human-eval importer. Outputs are
named by the image's stem, so stems must be unique. Image paths must stay inside the file's folder, and
prompts pass checks.check_prompt. An entry may carry `"motion": "bouncing"`, the motion the prompt is
meant to make, as a label for `stickers eval auto`'s relevance measure (the prompt itself is never
parsed for it). Every error is one line naming the file, the entry index and what is expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .checks import check_prompt
from .errors import UserError

PROMPTS_FILE = "prompts.json"
EXPECTED = '{"image": "name.png", "prompt": "..."}'
MAX_ENTRIES = 10_000  # entries in one prompts.json (and prompts in a HITL set)
MAX_FILE_BYTES = 16 * 2**20  # 10,000 entries of up to 500-character prompts, with room for extra fields

MAX_LABEL_CHARS = 40  # an optional "motion" label per entry


@dataclass(frozen=True)
class PromptEntry:
    """One entry: `name` as written in the file, `image` that name inside the file's folder."""

    image: Path
    prompt: str
    name: str
    motion: str | None = None  # the intended motion as a label (evaluation sets): never parsed from the prompt

    @property
    def stem(self) -> str:
        """The outputs' name."""
        return self.image.stem


def read_prompts_file(path: Path, images_must_exist: bool = False) -> list[PromptEntry]:
    """Parse `path` (a prompts.json); with `images_must_exist`, each image must be a file beside it."""
    if not path.parent.is_dir():
        raise UserError(f"inputs folder '{path.parent}' does not exist")
    if not path.is_file():
        raise UserError(f"'{path}' does not exist: expected a JSON list of {EXPECTED}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UserError(f"'{path}' is {path.stat().st_size:,} bytes: expected at most {MAX_FILE_BYTES:,}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"'{path}' is not valid JSON ({getattr(e, 'msg', e)}): expected a list of {EXPECTED}") \
            from None
    if not isinstance(data, list) or not data:
        raise UserError(f"'{path}': expected a non-empty JSON list of {EXPECTED}")
    if len(data) > MAX_ENTRIES:
        raise UserError(f"'{path}' has {len(data):,} entries: expected at most {MAX_ENTRIES:,}")
    entries, stems = [], set()
    folder = path.parent.resolve()
    for i, d in enumerate(data):
        where = f"'{path}' entry {i}"
        if not (isinstance(d, dict) and isinstance(d.get("image"), str) and isinstance(d.get("prompt"), str)
                and Path(d["image"].strip()).stem):
            raise UserError(f"{where}: expected {EXPECTED} with string values")
        if "\x00" in d["image"] + d["prompt"]:
            raise UserError(f"{where}: contains a NUL character: expected plain text")
        if not (folder / d["image"]).resolve().is_relative_to(folder):  # "../x", "/etc/x", a link out
            raise UserError(f"{where}: image '{d['image']}' is outside '{path.parent}': expected a path inside it")
        prompt = check_prompt(d["prompt"], f"{where}: prompt")  # before any work starts
        motion = d.get("motion")
        if motion is not None and not (isinstance(motion, str) and 0 < len(motion) <= MAX_LABEL_CHARS):
            raise UserError(f"{where}: 'motion' must be a short label such as \"bouncing\" (at most "
                            f"{MAX_LABEL_CHARS} characters)")
        e = PromptEntry(image=path.parent / d["image"], prompt=prompt, name=d["image"], motion=motion)
        if images_must_exist and not e.image.is_file():
            raise UserError(f"{where}: image '{e.name}' is not in '{path.parent}': expected an image file there")
        if e.stem in stems:
            raise UserError(f"{where}: image stem '{e.stem}' appears twice: expected unique stems "
                            "(outputs are named by them)")
        stems.add(e.stem)
        entries.append(e)
    return entries
