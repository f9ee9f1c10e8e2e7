"""Still styles from SVG (iconify JSON, OpenMoji files) rendered with resvg-py, the held-out style's split,
and the guard that keeps the Twemoji/Noto test sets out of training."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animated_stickers.data.sources import (
    HELDOUT_STYLE_SPLIT,
    item_split,
    procedural_items,
    style_items,
    user_items,
)
from animated_stickers.data.splits import split_of
from animated_stickers.data.test_sets import unseen_stills
from animated_stickers.data.unseen import TestOnlySourceError, assert_not_training_source
from animated_stickers.errors import UserError

RED_BOX = '<path fill="#f00" d="M8 8h16v16H8z"/>'  # the middle quarter of a 32-unit box
LEFT_BAR = '<path fill="currentColor" d="M0 0h8v32H0z"/>'  # the left quarter, drawn in currentColor


def _iconify_package(cache: Path, package: str, icons: dict, chars: dict) -> None:
    folder = cache / "src" / f"{package}-1.2.6" / "package"
    folder.mkdir(parents=True)
    prefix = package.removeprefix("iconify-json-")
    (folder / "icons.json").write_text(json.dumps({"prefix": prefix, "width": 32, "height": 32, **icons}))
    (folder / "chars.json").write_text(json.dumps(chars))


def _rgba(path: str) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        return np.asarray(im)


def test_iconify_set_renders_transparent_512px_pngs_named_by_code_points(tmp_path):
    icons = {"icons": {"grinning-face": {"body": RED_BOX}, "tall-thing": {"body": RED_BOX, "height": 64},
                       "left-bar": {"body": LEFT_BAR}, "made-up-sticker": {"body": RED_BOX},
                       "waving-hand": {"body": RED_BOX}, "person-skiing-dark": {"body": RED_BOX}},
             "aliases": {"right-bar": {"parent": "left-bar", "hFlip": True}}}
    chars = {"1f600": "grinning-face", "1f44b": "waving-hand", "1f3c2": "person-skiing", "2b05": "left-bar",
             "27a1": "right-bar", "1f5fc": "tall-thing"}
    _iconify_package(tmp_path, "iconify-json-fluent-emoji-flat", icons, chars)
    items = {i.name: i for i in style_items(tmp_path, "fluent-flat", progress=False)}
    # code points where chars.json knows them; a tone variant Unicode lacks is dropped, an unknown name kept
    assert set(items) == {"1f600", "1f44b", "2b05", "27a1", "1f5fc", "made-up-sticker"}
    face = items["1f600"]
    assert (face.kind, face.source, face.key) == ("still", "fluent-flat", "fluent-flat_1f600")
    assert "MIT" in face.license and face.caption is None  # the emoji table captions it (as for Fluent 3D)
    assert items["made-up-sticker"].caption == "made up sticker"
    assert Path(face.path) == tmp_path / "rendered" / "fluent-flat" / "grinning-face.png"
    rgba = _rgba(face.path)
    assert rgba.shape == (512, 512, 4)
    assert rgba[0, 0, 3] == 0 and rgba[-1, -1, 3] == 0  # transparent background
    assert tuple(rgba[256, 256]) == (255, 0, 0, 255)
    assert _rgba(items["1f5fc"].path).shape == (512, 256, 4)  # 32x64 box: long side 512, aspect kept
    left, right = _rgba(items["2b05"].path), _rgba(items["27a1"].path)
    assert left[256, 32, 3] == 255 and left[256, 480, 3] == 0 and tuple(left[256, 32, :3]) == (0, 0, 0)
    assert right[256, 480, 3] == 255 and right[256, 32, 3] == 0  # the alias is mirrored
    # rendered once: a second listing leaves the files alone
    before = Path(face.path).stat().st_mtime_ns
    style_items(tmp_path, "fluent-flat", progress=False)
    assert Path(face.path).stat().st_mtime_ns == before


def test_openmoji_files_render_with_annotations_for_extras(tmp_path):
    pkg = tmp_path / "src" / "openmoji-17.0.0" / "package"
    (pkg / "color" / "svg").mkdir(parents=True)
    (pkg / "data").mkdir()
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">{RED_BOX}</svg>'
    for stem in ("1F600", "E000", "0023-FE0F-20E3"):
        (pkg / "color" / "svg" / f"{stem}.svg").write_text(svg)
    (pkg / "data" / "openmoji.json").write_text(json.dumps([{"hexcode": "E000", "annotation": "goldfish"}]))
    items = {i.name: i for i in style_items(tmp_path, "openmoji", progress=False)}
    assert set(items) == {"1f600", "e000", "23-fe0f-20e3"}
    assert items["e000"].caption == "goldfish" and items["1f600"].caption is None
    assert items["1f600"].license.startswith("CC BY-SA 4.0")
    assert _rgba(items["e000"].path)[0, 0, 3] == 0


def test_heldout_style_and_everything_made_from_it_get_its_own_split(tmp_path):
    icons = {"icons": {"grinning-face": {"body": RED_BOX}}}
    _iconify_package(tmp_path, "iconify-json-fluent-emoji-high-contrast", icons, {"1f600": "grinning-face"})
    _iconify_package(tmp_path, "iconify-json-fluent-emoji-flat", icons, {"1f600": "grinning-face"})
    [held] = style_items(tmp_path, "fluent-high-contrast", progress=False)
    [flat] = style_items(tmp_path, "fluent-flat", progress=False)
    assert item_split(held) == HELDOUT_STYLE_SPLIT
    assert all(item_split(p) == HELDOUT_STYLE_SPLIT for p in procedural_items([held], 2))
    record = {"source": "procedural", "name": "1f600", "path": "/out/generated/x.webp", "still_path": held.path}
    assert item_split(record) == HELDOUT_STYLE_SPLIT  # a prepared record keeps the still's path
    assert item_split(flat) == split_of("1f600") and item_split(flat) != HELDOUT_STYLE_SPLIT
    with pytest.raises(UserError, match="expected one of"):
        style_items(tmp_path, "comic-sans")


@pytest.mark.parametrize("path", [
    "/c/test-only/src/twemoji-svg-15.0.0/package/1f600.svg",
    "/x/node_modules/@twemoji/svg/1f600.svg",
    "/x/emoji-datasource-google-16.0.0/package/img/google/64/1f600.png",
    "/x/emoji-datasource-twitter/img/twitter/sheets/64.png",
    "/x/noto-emoji/png/512/emoji_u1f600.png",
    "/x/svgmoji-noto-3.2.0/package/sprites/all.svg",
])
def test_guard_rejects_twemoji_and_noto_files(path):
    with pytest.raises(TestOnlySourceError, match="test sets"):
        assert_not_training_source(path)


def test_guard_accepts_training_files_and_rejects_test_items(tmp_path):
    assert_not_training_source("/c/src/lobehub-fluent-emoji-3d-1.1.0/package/assets/1f600.webp")
    assert_not_training_source("/videos/notorious-cat.webp")  # a name merely starting with 'noto'
    with pytest.raises(TestOnlySourceError):
        assert_not_training_source({"source": "noto", "name": "1f600", "path": "/tmp/a.png"})
    folder = tmp_path / "twemoji"  # a user folder holding Twemoji copies: the item builder refuses it
    folder.mkdir()
    (folder / "1f600.png").write_bytes(b"x")
    with pytest.raises(TestOnlySourceError):
        user_items(folder)


def test_unseen_stills_from_prefetched_packages(tmp_path):
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">{RED_BOX}</svg>'
    twemoji = tmp_path / "test-only" / "src" / "twemoji-svg-15.0.0" / "package"
    twemoji.mkdir(parents=True)
    for stem in ("1f600", "1f44b", "2764", "1f436"):
        (twemoji / f"{stem}.svg").write_text(svg)
    noto = tmp_path / "test-only" / "src" / "svgmoji-noto-3.2.0" / "package" / "sprites"
    noto.mkdir(parents=True)
    children = "".join(f'<svg viewBox="0 0 32 32" id="{i}">{RED_BOX}</svg>' for i in ("1F600", "1F44B"))
    (noto / "all.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 2000 2000">{children}</svg>')
    a = unseen_stills(tmp_path, "twemoji", n=3, seed=1, size=64)
    b = unseen_stills(tmp_path, "twemoji", n=3, seed=1, size=64)
    assert [x[0] for x in a] == [x[0] for x in b] and len({x[0] for x in a}) == 3
    name, rgba, caption = a[0]
    assert rgba.shape == (64, 64, 4) and rgba.dtype == np.uint8 and rgba[0, 0, 3] == 0 and rgba[32, 32, 3] == 255
    assert caption  # from the emoji table
    got = unseen_stills(tmp_path, "noto", n=5, seed=0, size=64)
    assert sorted(x[0] for x in got) == ["1f44b", "1f600"]
    assert all(tuple(x[1][32, 32]) == (255, 0, 0, 255) for x in got)
    with pytest.raises(UserError, match="expected one of"):
        unseen_stills(tmp_path, "apple", n=1)
