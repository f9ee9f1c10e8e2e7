"""prompts.json: the one parser for a folder's list of {"image": "name.png", "prompt": "..."} entries.

Read by `stickers animate --inputs`, `stickers eval auto` and the human-eval importer. Outputs are
named by the image's stem, so stems must be unique. Every error is one line naming the file, the
entry index and what is expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

PROMPTS_FILE = "prompts.json"
EXPECTED = '{"image": "name.png", "prompt": "..."}'


@dataclass(frozen=True)
class PromptEntry:
    """One entry: `name` as written in the file, `image` that name inside the file's folder."""

    image: Path
    prompt: str
    name: str

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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"'{path}' is not valid JSON ({getattr(e, 'msg', e)}): expected a list of {EXPECTED}") \
            from None
    if not isinstance(data, list) or not data:
        raise UserError(f"'{path}': expected a non-empty JSON list of {EXPECTED}")
    entries, stems = [], set()
    for i, d in enumerate(data):
        where = f"'{path}' entry {i}"
        if not (isinstance(d, dict) and isinstance(d.get("image"), str) and isinstance(d.get("prompt"), str)
                and Path(d["image"].strip()).stem):
            raise UserError(f"{where}: expected {EXPECTED} with string values")
        if "\x00" in d["image"] + d["prompt"]:
            raise UserError(f"{where}: contains a NUL character: expected plain text")
        e = PromptEntry(image=path.parent / d["image"], prompt=d["prompt"], name=d["image"])
        if images_must_exist and not e.image.is_file():
            raise UserError(f"{where}: image '{e.name}' is not in '{path.parent}': expected an image file there")
        if e.stem in stems:
            raise UserError(f"{where}: image stem '{e.stem}' appears twice: expected unique stems "
                            "(outputs are named by them)")
        stems.add(e.stem)
        entries.append(e)
    return entries
