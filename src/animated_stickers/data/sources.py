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

from ..atomic import atomic_path, is_partial
from ..errors import UserError
from .animation import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .captions import is_codepoint_stem, normalise
from .unseen import assert_not_training_source

NPM_PACKAGES = {  # package -> pinned version (the versions measured in FACTS / the issue)
    "@lobehub/fluent-emoji-anim-1": "1.0.0",
    "@lobehub/fluent-emoji-anim-2": "1.0.0",
    "@lobehub/fluent-emoji-anim-3": "1.0.0",
    "@lobehub/fluent-emoji-anim-4": "1.0.0",
    "@lobehub/fluent-emoji-3d": "1.1.0",
    "emojibase-data": "17.0.0",
    "@iconify-json/fluent-emoji-flat": "1.2.6",  # SVG bodies in one iconify JSON (MIT)
    "@iconify-json/fluent-emoji-high-contrast": "1.2.6",
    "openmoji": "17.0.0",  # color/svg/HEXCODE.svg (CC BY-SA 4.0)
}
FLUENT_LICENSE = "MIT (Microsoft Fluent Emoji, https://github.com/microsoft/fluentui-emoji)"
LICENSES = {
    "fluent-anim": FLUENT_LICENSE + "; npm @lobehub/fluent-emoji-anim-1..4 (MIT)",
    "fluent-3d": FLUENT_LICENSE + "; npm @lobehub/fluent-emoji-3d (MIT)",
    "procedural": "derived from the still's license: ",
    "user": "user-provided (license not checked)",
    "fluent-flat": FLUENT_LICENSE + "; npm @iconify-json/fluent-emoji-flat (MIT)",
    "fluent-high-contrast": FLUENT_LICENSE + "; npm @iconify-json/fluent-emoji-high-contrast (MIT)",
    "openmoji": "CC BY-SA 4.0 (OpenMoji, https://openmoji.org: attribution, share-alike); npm openmoji",
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


def tarball_stem(package: str, version: str) -> str:
    """The name `npm pack` gives a package's tarball, without '.tgz' ('@a/b', '1.0' -> 'a-b-1.0')."""
    return package.lstrip("@").replace("/", "-") + "-" + version  # npm pack's file naming


def fetch_npm(cache: Path, packages: dict[str, str] | None = None, progress=None) -> list[Path]:
    """`npm pack` each package into cache/npm and unpack it into cache/src (skips what is there)."""
    packages = packages or NPM_PACKAGES
    (cache / "npm").mkdir(parents=True, exist_ok=True)
    (cache / "src").mkdir(parents=True, exist_ok=True)
    unpacked = []
    for package, version in packages.items():
        stem = tarball_stem(package, version)
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
            with atomic_path(dest, folder=True) as tmp, tarfile.open(tgz) as tf:
                tf.extractall(tmp, filter="data")
        unpacked.append(dest / "package")
        if progress:
            progress(package)
    return unpacked


def _package_dirs(cache: Path, prefix: str) -> list[Path]:
    return sorted(p / "package" for p in (cache / "src").glob(prefix + "*") if (p / "package").is_dir()
                  and not is_partial(p))


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
    return _guarded([Item(key=sample_key(source, normalise(f.stem)), source=source, license=LICENSES[source],
                          path=str(f), name=normalise(f.stem), kind=kind) for f in fluent_paths(cache, kind)])


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
    return _guarded(items)


def procedural_items(stills: list[Item], per_still: int, motions: list[str] | None = None) -> list[Item]:
    """`per_still` procedural animations of each still (motions picked reproducibly per still)."""
    from ..motion.procedural import pick_motions

    items = []
    for still in stills:
        for motion in pick_motions(still.key, per_still, motions):
            items.append(Item(key=sample_key("proc", f"{still.name}_{motion}" if still.source == "fluent-3d"
                                         else f"{still.source}_{still.name}_{motion}"), source="procedural",
                              license=LICENSES["procedural"] + still.license, path=still.path, name=still.name,
                              caption=still.caption, motion=motion))
    return _guarded(items)


# ---- Still styles (issue 11): Fluent 3D WebPs, and SVG sets rendered once to PNG ----

STYLES = ("fluent-3d", "fluent-flat", "fluent-high-contrast", "openmoji")
SVG_STYLES = {"fluent-flat": "@iconify-json/fluent-emoji-flat",
              "fluent-high-contrast": "@iconify-json/fluent-emoji-high-contrast", "openmoji": "openmoji"}
# One whole style of our own never reaches training, to measure style fidelity on a style the model never saw.
# High-contrast Fluent: the same emoji designs as the trained Fluent styles drawn monochrome, so a gap on it
# is a style gap, not a content gap; OpenMoji stays in training as the one outlined, non-Fluent style.
HELDOUT_STYLE = "fluent-high-contrast"
HELDOUT_STYLE_SPLIT = "heldout-style"  # shards: still-heldout-style-NNNNNN.tar
_TONE_SUFFIX = re.compile(r"-(light|medium-light|medium|medium-dark|dark)$")


def _pinned_package(cache: Path, package: str) -> Path:
    folder = cache / "src" / tarball_stem(package, NPM_PACKAGES[package]) / "package"
    if not folder.is_dir():
        raise UserError(f"'{folder}': {package} is not fetched; run `stickers data fetch --cache {cache}`")
    return folder


def _style_caption(name: str, words: str) -> str | None:
    """None when the name is an emoji the caption table knows (shards.describe then gives the same CLDR
    caption, label and keywords as for Fluent 3D), else the given words."""
    from .captions import CaptionError, caption_for

    if is_codepoint_stem(name):
        try:
            caption_for(name)
            return None
        except CaptionError:
            pass
    return words


def _iconify_entries(package: Path) -> list[tuple[str, str, str | None, str]]:
    """(file stem, name, caption, SVG) per icon; the name is the emoji's code points from chars.json."""
    from .svg import iconify_svgs

    svgs = iconify_svgs(package / "icons.json")
    chars = json.loads((package / "chars.json").read_text(encoding="utf-8"))
    stem_of: dict[str, str] = {}
    for hexes, icon in chars.items():  # '1f9d1-1f3fb-200d-1f3a8' -> icon name; keep the longest spelling
        if is_codepoint_stem(hexes) and len(hexes) > len(stem_of.get(icon, "")):
            stem_of[icon] = normalise(hexes)
    out = []
    for icon, svg in svgs.items():
        if icon not in stem_of and _TONE_SUFFIX.sub("", icon) in stem_of:
            continue  # skin tones Unicode does not have: their split would not follow the base emoji's
        name = stem_of.get(icon, icon)
        out.append((icon, name, _style_caption(name, icon.replace("-", " ")), svg))
    return out


def _openmoji_entries(package: Path) -> list[tuple[str, str, str | None, Path]]:
    """(file stem, name, caption, SVG file) per colour OpenMoji; annotations name the non-Unicode extras."""
    table = json.loads((package / "data" / "openmoji.json").read_text(encoding="utf-8"))
    annotation = {row["hexcode"]: row.get("annotation") or "" for row in table}
    out = []
    for f in sorted((package / "color" / "svg").glob("*.svg")):
        name = normalise(f.stem) if is_codepoint_stem(f.stem) else f.stem.lower()
        out.append((f.stem, name, _style_caption(name, annotation.get(f.stem) or _caption_from_filename(f.stem)), f))
    return out


def render_style(cache: Path, style: str, progress: bool = True) -> list[tuple[str, str | None, Path]]:
    """Render an SVG style once into cache/rendered/STYLE/*.png (512 px, skips existing): (name, caption, png)."""
    import sys

    from .svg import render_to_folder

    package = _pinned_package(cache, SVG_STYLES[style])
    if style == "openmoji":
        entries = [(s, n, c, lambda f=f: f.read_text(encoding="utf-8")) for s, n, c, f in _openmoji_entries(package)]
    else:
        entries = [(s, n, c, lambda v=v: v) for s, n, c, v in _iconify_entries(package)]
    pngs, bad = render_to_folder([(s, svg) for s, _, _, svg in entries], cache / "rendered" / style,
                                 desc=f"render {style}", progress=progress)
    if bad:
        print(f"warning: {len(bad)} {style} SVGs did not render (first: {bad[0]})", file=sys.stderr)
    return [(n, c, pngs[s]) for s, n, c, _ in entries if s in pngs]


def style_items(cache: Path, style: str, progress: bool = True) -> list[Item]:
    """The still stickers of one style (see STYLES) as kind 'still' Items, one per emoji; SVG styles are
    rendered on first use. Use `item_split` for their split: the held-out style never trains."""
    if style not in STYLES:
        raise UserError(f"style '{style}': expected one of {', '.join(STYLES)}")
    if style == "fluent-3d":
        return fluent_items(cache, "still")
    seen: set[str] = set()
    items = []
    for name, caption, png in render_style(cache, style, progress):
        if emoji_key(name) in seen:
            continue
        seen.add(emoji_key(name))
        items.append(Item(key=sample_key(style, name), source=style, license=LICENSES[style], path=str(png),
                          name=name, caption=caption, kind="still"))
    return _guarded(items)


def _made_from_style(path: str | None, style: str) -> bool:
    return bool(path) and Path(path).parent.name == style and Path(path).parent.parent.name == "rendered"


def item_split(item: Item | dict) -> str:
    """Split of an Item or prepared record: 'heldout-style' for the held-out style's stills and anything
    made from them (procedural animations keep the still's path), else data/splits.py's emoji split."""
    from .splits import split_of

    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k, None)
    if get("source") == HELDOUT_STYLE or any(_made_from_style(get(k), HELDOUT_STYLE) for k in ("path", "still_path")):
        return HELDOUT_STYLE_SPLIT
    return split_of(get("name"))


def _guarded(items: list[Item]) -> list[Item]:
    """`items` after checking that none comes from a test-only set (Twemoji, Noto: data/unseen.py)."""
    for item in items:
        assert_not_training_source(item)
    return items
