"""`stickers hitl prompts`: a prompt set in the paper's three buckets, each prompt paired with a still.

Stills are held-out or training stickers (data/splits.py), never a test-set one (eval/unseen.py). The
folder written is what `stickers animate --inputs` and the HITL importer read: one PNG per prompt
(`p0001.png`, so stems are unique even when a sticker serves several prompts) and prompts.json, whose
entries carry the bucket, motion word, subject and sticker name beside `image` and `prompt`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_path, atomic_write_text
from ..data.prompt_sets import prompt_set
from ..data.splits import split_of
from ..errors import UserError
from ..prompts_file import PROMPTS_FILE

STILL_SUFFIXES = (".png", ".webp", ".gif", ".apng")
SPLITS = ("train", "heldout", "all")


def still_paths(stills: Path | None, cache: Path | None, split: str) -> list[Path]:
    """Stills of `split`: the files of `stills`, else the Fluent 3D stills of the data cache."""
    from ..eval.unseen import TestOnlySourceError, assert_not_training_source

    if split not in SPLITS:
        raise UserError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    if stills is not None:
        if not stills.is_dir():
            raise UserError(f"--stills {stills}: not a folder; expected a folder of still stickers (PNG/WebP)")
        paths = sorted(p for p in stills.iterdir() if p.suffix.lower() in STILL_SUFFIXES and p.is_file())
    else:
        from ..data.sources import default_cache, fluent_paths

        paths = fluent_paths(cache or default_cache(), "still")
    paths = [p for p in paths if split == "all" or split_of(p.stem) == split]
    for p in paths:
        try:
            assert_not_training_source(p)  # Twemoji/Noto are test sets: never HITL stickers
        except TestOnlySourceError as e:
            raise UserError(str(e)) from None
    if not paths:
        raise UserError(f"no {split} stills in {stills or 'the Fluent 3D cache'}; expected sticker images "
                        "named by emoji code points (e.g. 1f600.png) or by subject")
    return paths


def _still(path: Path, size: int) -> Image.Image:
    """The sticker's first frame as RGBA, fitted into size x size (aspect kept)."""
    try:
        with Image.open(path) as im:
            im.seek(0)
            rgba = im.convert("RGBA")
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{path}: unreadable sticker image ({type(e).__name__})") from None
    rgba.thumbnail((size, size), Image.Resampling.LANCZOS)
    return rgba


def write_prompt_set(out: Path, paths: list[Path], n: int, seed: int = 0, size: int = 128) -> list[dict]:
    """`n` prompts over the three buckets, sticker i % len(paths) (shuffled by `seed`) for prompt i."""
    if n < 1:
        raise UserError(f"--n {n}: expected at least 1 prompt")
    if size < 16:
        raise UserError(f"--size {size}: expected at least 16 px")
    paths = list(paths)
    random.Random(seed).shuffle(paths)
    specs = prompt_set([p.stem for p in paths], n, seed)
    out.mkdir(parents=True, exist_ok=True)
    entries, cache = [], {}
    for i, spec in enumerate(specs):
        src = paths[i % len(paths)]
        if src not in cache:
            cache[src] = _still(src, size)
        name = f"p{i + 1:04d}.png"
        with atomic_path(out / name) as tmp:
            cache[src].save(tmp, format="PNG")
        entries.append({"image": name, "prompt": spec.prompt, "bucket": spec.bucket,
                        "motion_word": spec.motion_word, "subject": spec.subject, "sticker": src.stem,
                        "split": split_of(src.stem)})
    # prompts.json last: a folder with it is complete.
    atomic_write_text(out / PROMPTS_FILE, json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    return entries


def read_prompt_set(folder: Path) -> list[dict]:
    """The entries of a prompts folder (checked by the one prompts.json parser), with their extra fields."""
    from ..prompts_file import read_prompts_file

    read_prompts_file(folder / PROMPTS_FILE, images_must_exist=True)
    return json.loads((folder / PROMPTS_FILE).read_text(encoding="utf-8"))
