"""Turn a folder of generated animations + prompts.json into items for the store.

Layouts (prompts.json is a list of {"image": "name.png", "prompt": "..."}; outputs are named by the
image's stem, as for `stickers eval auto`):
  eval: DIR/name.webp (or .gif, .png APNG, .webm, .mp4) for every entry; one model per import.
  hitl: DIR/<teacher>/name.webp; every sub-folder is one model, and the files that share a stem
        become the candidates of one item (paper 2.3: six per prompt+image).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from ...errors import UserError
from ...prompts_file import read_prompts_file
from .store import MEDIA_TYPES, NewCandidate, NewItem

# Preferred order when several files share a stem; .png last since it may be the still input image.
ANIMATION_SUFFIXES = (".webp", ".gif", ".apng", ".webm", ".mp4", ".mov", ".png")
assert set(ANIMATION_SUFFIXES) <= set(MEDIA_TYPES)


def find_animation(folder: Path, stem: str, not_this: Path | None = None) -> Path | None:
    """The animation named `stem` in `folder` (first suffix in ANIMATION_SUFFIXES), never `not_this`."""
    for suffix in ANIMATION_SUFFIXES:
        for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if cand.is_file() and (not_this is None or cand.resolve() != not_this.resolve()):
                return cand
    return None


def scan_eval(folder: Path, model: str, prompts: Path | None = None) -> list[NewItem]:
    """One eval item per prompts.json entry; every entry must have its animation in `folder`."""
    folder = _folder(folder)
    if not model.strip():
        raise UserError("--model is empty; expected the name of the model that made the animations")
    prompts = prompts or folder / "prompts.json"
    items = []
    for e in read_prompts_file(prompts):
        path = find_animation(folder, e.stem, not_this=e.image)
        if path is None:
            raise UserError(f"{folder}: no animation for {e.name!r}; expected {e.stem}.webp "
                            f"(or {', '.join(s for s in ANIMATION_SUFFIXES if s != '.webp')})")
        items.append(NewItem(key=f"{model}/{e.stem}", prompt=e.prompt, image=e.name,
                             candidates=[NewCandidate(model, folder, path.name)]))
    return items


def scan_hitl(folder: Path, prompts: Path | None = None, seed: int = 0) -> list[NewItem]:
    """One HITL item per entry, its candidates the same-stem files of every model sub-folder (shuffled)."""
    folder = _folder(folder)
    prompts = prompts or folder / "prompts.json"
    models = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not models:
        raise UserError(f"{folder}: no model sub-folders; a HITL import expects DIR/<model>/<stem>.webp")
    items = []
    for e in read_prompts_file(prompts):
        found = [(m.name, find_animation(m, e.stem)) for m in models]
        cands = [NewCandidate(name, folder, p.relative_to(folder).as_posix()) for name, p in found if p]
        if not cands:
            raise UserError(f"{folder}: no candidate for {e.name!r} in any of {', '.join(m.name for m in models)}")
        # Shuffle so a teacher's position on the page says nothing about it; seeded for reproducibility.
        rnd = random.Random(int.from_bytes(hashlib.sha1(f"{seed}/{e.stem}".encode()).digest()[:8], "big"))
        rnd.shuffle(cands)
        items.append(NewItem(key=e.stem, prompt=e.prompt, image=e.name, candidates=cands))
    return items


def _folder(folder: Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; expected a folder of animations with prompts.json")
    return folder.resolve()
