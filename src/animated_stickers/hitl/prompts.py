"""`stickers hitl prompts`: a prompt set in the paper's three buckets, each prompt paired with a still.

Stills are held-out or training stickers (data/splits.py), never a test-set one (data/unseen.py). The
folder written is what `stickers animate --inputs` and the HITL importer read: one PNG per prompt
(`p0001.png`, so stems are unique even when a sticker serves several prompts) and prompts.json, whose
entries carry the bucket, motion word, subject and sticker name beside `image` and `prompt`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

from ..atomic import atomic_path, atomic_write_text
from ..data.prompt_sets import prompt_set
from ..data.splits import split_of
from ..errors import UserError
from ..prompts_file import PROMPTS_FILE
from .inputs import MAX_PROMPTS, check_count, check_stills, load_still, read_entries

STILL_SUFFIXES = (".png", ".webp", ".gif", ".apng")
SPLITS = ("train", "heldout", "all")


def still_paths(stills: Path | None, cache: Path | None, split: str) -> list[Path]:
    """Stills of `split`: the files of `stills`, else the Fluent 3D stills of the data cache."""
    from ..data.unseen import TestOnlySourceError, assert_not_training_source

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
    """The sticker's first frame as RGBA (decoded under the shared budgets), fitted into size x size."""
    rgba = load_still(path, f"--stills {path.parent}")
    rgba.thumbnail((size, size), Image.Resampling.LANCZOS)
    return rgba


def write_prompt_set(out: Path, paths: list[Path], n: int, seed: int = 0, size: int = 128) -> list[dict]:
    """`n` prompts over the three buckets, sticker i % len(paths) (shuffled by `seed`) for prompt i."""
    check_count(n, "--n", MAX_PROMPTS)
    if not 16 <= size <= 1024:
        raise UserError(f"--size {size}: expected 16 to 1024 px")
    paths = list(paths)
    random.Random(seed).shuffle(paths)
    specs = prompt_set([p.stem for p in paths], n, seed)
    used = [paths[i % len(paths)] for i in range(len(specs))]
    stills = {src: _still(src, size) for src in dict.fromkeys(used)}  # every image read before any is written
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (spec, src) in enumerate(zip(specs, used)):
        name = f"p{i + 1:04d}.png"
        with atomic_path(out / name) as tmp:
            stills[src].save(tmp, format="PNG")
        entries.append({"image": name, "prompt": spec.prompt, "bucket": spec.bucket,
                        "motion_word": spec.motion_word, "subject": spec.subject, "sticker": src.stem,
                        "split": split_of(src.stem)})
    # prompts.json last: a folder with it is complete.
    atomic_write_text(out / PROMPTS_FILE, json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    return entries


def read_prompt_set(folder: Path, check_images: bool = False) -> list[dict]:
    """The entries of a prompts folder (checked by the one prompts.json parser: paths inside the folder,
    prompts, counts), with their extra fields; with `check_images` every image is decoded once too."""
    entries = read_entries(folder / PROMPTS_FILE, images_must_exist=True)
    if check_images:
        check_stills(folder, entries)
    return entries
