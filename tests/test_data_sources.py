"""Sources: Fluent file listing (code points normalised), user folders with captions, npm fetch idempotence."""

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from animated_stickers.data.sources import fetch_npm, fluent_items, procedural_items, user_items
from animated_stickers.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def test_fluent_duplicates_by_leading_zeros_are_one_item(tmp_path):
    for pkg in ("lobehub-fluent-emoji-anim-1-1.0.0", "lobehub-fluent-emoji-anim-4-1.0.0"):
        (tmp_path / "src" / pkg / "package" / "assets").mkdir(parents=True)
    a1 = tmp_path / "src" / "lobehub-fluent-emoji-anim-1-1.0.0" / "package" / "assets"
    a4 = tmp_path / "src" / "lobehub-fluent-emoji-anim-4-1.0.0" / "package" / "assets"
    shutil.copy(FIXTURES / "1f634.webp", a1 / "0023-fe0f-20e3.webp")
    shutil.copy(FIXTURES / "1f634.webp", a4 / "23-fe0f-20e3.webp")
    shutil.copy(FIXTURES / "1f634.webp", a4 / "1f3f4-e0067_e0062_e0065_e006e_e0067.webp")
    (a4 / "README.webp").write_bytes(b"not an emoji name")
    items = fluent_items(tmp_path)
    assert sorted(i.name for i in items) == ["1f3f4-e0067-e0062-e0065-e006e-e0067-e007f", "23-fe0f-20e3"]
    assert all("." not in i.key and "/" not in i.key for i in items)
    with pytest.raises(UserError, match="stickers data fetch"):
        fluent_items(tmp_path, "still")


def test_user_folder_captions_from_sidecar_table_or_name(tmp_path):
    for name in ("a.gif", "sub/b.mp4", "c_jumping_cat.webm", "1f600.webp", "notes.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a.txt").write_text("a dancing banana\n")
    (tmp_path / "captions.jsonl").write_text(json.dumps({"file": "sub/b.mp4", "caption": "a waving robot"}) + "\n")
    items = {i.path.split(str(tmp_path) + "/")[1]: i for i in user_items(tmp_path, license="CC-BY-4.0")}
    assert set(items) == {"a.gif", "sub/b.mp4", "c_jumping_cat.webm", "1f600.webp"}
    assert items["a.gif"].caption == "a dancing banana"
    assert items["sub/b.mp4"].caption == "a waving robot" and items["sub/b.mp4"].key == "user_sub-b"
    assert items["c_jumping_cat.webm"].caption == "c jumping cat"
    assert items["1f600.webp"].caption is None and items["1f600.webp"].name == "1f600"  # emoji table later
    assert {i.license for i in items.values()} == {"CC-BY-4.0"}


def test_bad_caption_table_and_empty_folder_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="expected a folder"):
        user_items(tmp_path / "missing")
    (tmp_path / "x.gif").write_bytes(b"x")
    (tmp_path / "captions.csv").write_text("name,text\nx.gif,hello\n")
    with pytest.raises(UserError, match="'file' and 'caption'"):
        user_items(tmp_path)


def test_procedural_items_name_motion_and_inherit_license(tmp_path):
    (tmp_path / "src" / "lobehub-fluent-emoji-3d-1.1.0" / "package" / "assets").mkdir(parents=True)
    shutil.copy(FIXTURES / "1f634.webp",
                tmp_path / "src" / "lobehub-fluent-emoji-3d-1.1.0" / "package" / "assets" / "1f634.webp")
    stills = fluent_items(tmp_path, "still")
    procs = procedural_items(stills, 3)
    assert len(procs) == 3 and len({p.motion for p in procs}) == 3
    assert all(p.license.endswith(stills[0].license) and p.name == "1f634" for p in procs)


def _tiny_npm_tarball(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tf:
        data = b'{"name": "emojibase-data", "version": "17.0.0"}'
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def test_fetch_unpacks_cached_tarballs_idempotently(tmp_path):
    (tmp_path / "npm").mkdir()
    _tiny_npm_tarball(tmp_path / "npm" / "emojibase-data-17.0.0.tgz")
    [pkg] = fetch_npm(tmp_path, {"emojibase-data": "17.0.0"})
    assert (pkg / "package.json").is_file()
    stamp = (pkg / "package.json").stat().st_mtime_ns
    fetch_npm(tmp_path, {"emojibase-data": "17.0.0"})  # nothing to do: no npm call, no re-extraction
    assert (pkg / "package.json").stat().st_mtime_ns == stamp
