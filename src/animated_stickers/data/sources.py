"""Where training animations come from: npm Fluent emoji (animated and 3D stills), a user's own videos,
and procedural animations of stills. Each source lists `Item`s (no decoding here) with its license.

Fetching is `npm pack` into `<cache>/npm/` and unpacking into `<cache>/src/<tarball stem>/`, both idempotent.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UserError
from .animation import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .captions import is_codepoint_stem, normalise

NPM_PACKAGES = {  # package -> pinned version (the versions measured in FACTS / the issue)
    "@lobehub/fluent-emoji-anim-1": "1.0.0",
    "@lobehub/fluent-emoji-anim-2": "1.0.0",
    "@lobehub/fluent-emoji-anim-3": "1.0.0",
    "@lobehub/fluent-emoji-anim-4": "1.0.0",
    "@lobehub/fluent-emoji-3d": "1.1.0",
    "emojibase-data": "17.0.0",
}
FLUENT_LICENSE = "MIT (Microsoft Fluent Emoji, https://github.com/microsoft/fluentui-emoji)"
LICENSES = {
    "fluent-anim": FLUENT_LICENSE + "; npm @lobehub/fluent-emoji-anim-1..4 (MIT)",
    "fluent-3d": FLUENT_LICENSE + "; npm @lobehub/fluent-emoji-3d (MIT)",
    "procedural": "derived from the still's license: ",
    "user": "user-provided (license not checked)",
}
USER_SUFFIXES = (IMAGE_SUFFIXES - {".jpg", ".jpeg"}) | VIDEO_SUFFIXES
CAPTION_FILES = ("captions.jsonl", "captions.json", "captions.csv")


@dataclass
class Item:
    """One sample to prepare: where its bytes are, and what is known before decoding it."""

    key: str  # unique WebDataset key: [A-Za-z0-9_-] only
    source: str  # 'fluent-anim', 'fluent-3d', 'user' or 'procedural'
    license: str
    path: str  # the original file (for procedural: the still it animates)
    name: str  # the stem used for captions and the split ('1f600', 'my cat')
    caption: str | None = None  # a given caption (user files, procedural), else from the emoji stem
    motion: str | None = None  # procedural motion name
    kind: str = "animated"  # 'animated' (video clips) or 'still' (text-to-image / procedural input)

    def to_dict(self) -> dict:
        return asdict(self)


def sample_key(prefix: str, name: str) -> str:
    """A WebDataset-safe key: no dots or slashes (webdataset splits keys at the first dot)."""
    return prefix + "_" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def default_cache() -> Path:
    """$STICKERS_CACHE, else ~/.cache/animated-stickers."""
    return Path(os.environ.get("STICKERS_CACHE", Path.home() / ".cache" / "animated-stickers"))


def _tarball_stem(package: str, version: str) -> str:
    return package.lstrip("@").replace("/", "-") + "-" + version  # npm pack's file naming


def fetch_npm(cache: Path, packages: dict[str, str] | None = None, progress=None) -> list[Path]:
    """`npm pack` each package into cache/npm and unpack it into cache/src (skips what is there)."""
    packages = packages or NPM_PACKAGES
    (cache / "npm").mkdir(parents=True, exist_ok=True)
    (cache / "src").mkdir(parents=True, exist_ok=True)
    unpacked = []
    for package, version in packages.items():
        stem = _tarball_stem(package, version)
        tgz = cache / "npm" / f"{stem}.tgz"
        if not tgz.is_file():
            if shutil.which("npm") is None:
                raise UserError(f"'{package}': not in {cache / 'npm'} and `npm` is not installed to fetch it")
            done = subprocess.run(["npm", "pack", f"{package}@{version}", "--pack-destination", str(cache / "npm")],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0 or not tgz.is_file():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise UserError(f"'{package}@{version}': npm pack failed ({last})")
        dest = cache / "src" / stem
        if not (dest / "package").is_dir():
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            with tarfile.open(tgz) as tf:
                tf.extractall(tmp, filter="data")
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)
        unpacked.append(dest / "package")
        if progress:
            progress(package)
    return unpacked


def _package_dirs(cache: Path, prefix: str) -> list[Path]:
    return sorted(p / "package" for p in (cache / "src").glob(prefix + "*") if (p / "package").is_dir()
                  and not p.name.endswith(".tmp"))


def emoji_key(stem: str) -> str:
    """One key per emoji: '0023-fe0f-20e3' and '23-fe0f-20e3' are one (other names: lower-cased)."""
    return normalise(stem) if is_codepoint_stem(stem) else stem.lower()


def unique_emoji_files(paths: list[Path]) -> list[Path]:
    """`paths` in path order with later spellings of an already seen emoji dropped (the first package wins)."""
    seen: set[str] = set()
    out = []
    for f in sorted(paths):
        if emoji_key(f.stem) not in seen:
            seen.add(emoji_key(f.stem))
            out.append(f)
    return out


def fluent_paths(cache: Path, kind: str = "animated", split: str | None = None) -> list[Path]:
    """The Fluent WebPs of the fetched packages (animated, or 3D stills), one per emoji, optionally of one
    split (data/splits.py). The one file lister for data preparation, training banks and evaluation."""
    from .splits import split_of

    prefix = "lobehub-fluent-emoji-anim-" if kind == "animated" else "lobehub-fluent-emoji-3d-"
    dirs = _package_dirs(cache, prefix)
    if not dirs:
        raise UserError(f"'{cache / 'src'}': no {prefix}* package; run `stickers data fetch --cache {cache}`")
    files = [f for d in dirs for f in (d / "assets").glob("*.webp") if is_codepoint_stem(f.stem)]
    return [f for f in unique_emoji_files(files) if split in (None, "all") or split_of(f.stem) == split]


def fluent_items(cache: Path, kind: str = "animated") -> list[Item]:
    """Fluent emoji files (animated packages, or 3D stills) as Items, one per normalised code-point stem."""
    source = "fluent-anim" if kind == "animated" else "fluent-3d"
    return [Item(key=sample_key(source, normalise(f.stem)), source=source, license=LICENSES[source], path=str(f),
                 name=normalise(f.stem), kind=kind) for f in fluent_paths(cache, kind)]


def _read_caption_table(folder: Path) -> dict[str, str]:
    """{file name or stem: caption} from captions.jsonl / .json / .csv in the folder (first one found)."""
    for name in CAPTION_FILES:
        f = folder / name
        if not f.is_file():
            continue
        try:
            if name.endswith(".jsonl"):
                rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
                return {str(r["file"]): str(r["caption"]) for r in rows}
            if name.endswith(".json"):
                data = json.loads(f.read_text(encoding="utf-8"))
                return {str(k): str(v) for k, v in data.items()}
            with f.open(newline="", encoding="utf-8") as fh:
                return {r["file"]: r["caption"] for r in csv.DictReader(fh)}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"'{f}': expected rows with 'file' and 'caption' ({type(e).__name__}: {e})") from None
    return {}


def _caption_from_filename(stem: str) -> str:
    return re.sub(r"[_\-.]+", " ", stem).strip()


def user_items(folder: Path, license: str = LICENSES["user"]) -> list[Item]:
    """A user's animations/videos under `folder`, captioned by NAME.txt, a captions file, or the name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"'{folder}': expected a folder of mp4/webm/mov/gif/webp/apng files")
    table = _read_caption_table(folder)
    items = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in USER_SUFFIXES):
        rel = f.relative_to(folder).as_posix()
        sidecar = f.with_suffix(".txt")
        caption = (sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file()
                   else table.get(rel) or table.get(f.name) or table.get(f.stem))
        if caption is None and not is_codepoint_stem(f.stem):
            caption = _caption_from_filename(f.stem)
        items.append(Item(key=sample_key("user", rel.rsplit(".", 1)[0]), source="user", license=license,
                          path=str(f), name=f.stem if not is_codepoint_stem(f.stem) else normalise(f.stem),
                          caption=caption))
    if not items:
        raise UserError(f"'{folder}': no files with suffix {', '.join(sorted(USER_SUFFIXES))}")
    return items


def procedural_items(stills: list[Item], per_still: int, motions: list[str] | None = None) -> list[Item]:
    """`per_still` procedural animations of each still (motions picked reproducibly per still)."""
    from .procedural import pick_motions

    items = []
    for still in stills:
        for motion in pick_motions(still.key, per_still, motions):
            items.append(Item(key=sample_key("proc", f"{still.name}_{motion}"), source="procedural",
                              license=LICENSES["procedural"] + still.license, path=still.path, name=still.name,
                              caption=still.caption, motion=motion))
    return items
