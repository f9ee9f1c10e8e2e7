"""Shared input checks (prompts, output paths) and atomic writes: what users and crashes can do to them."""

from __future__ import annotations

import pytest

from animated_stickers.atomic import atomic_path, atomic_write_text, is_partial
from animated_stickers.checks import MAX_PROMPT_CHARS, check_prompt, prepare_output_file
from animated_stickers.errors import UserError


def test_prompt_is_stripped_and_line_breaks_become_spaces():
    assert check_prompt("  waving\nhello\t") == "waving hello"
    assert check_prompt("x" * MAX_PROMPT_CHARS) == "x" * MAX_PROMPT_CHARS
    assert check_prompt("jumps 🐸 high") == "jumps 🐸 high"  # emoji are text, not control characters


@pytest.mark.parametrize("bad, match", [
    ("", "is empty"), (" \n ", "is empty"), (None, "is empty"), (42, "is a int"),
    ("x" * (MAX_PROMPT_CHARS + 1), f"expected at most {MAX_PROMPT_CHARS}"),
    ("wave\x00", r"U\+0000"), ("bell\x07", r"U\+0007\) at position 4"),
])
def test_bad_prompts_are_one_line_errors(bad, match):
    with pytest.raises(UserError, match=match) as e:
        check_prompt(bad, "field 'prompt'")
    assert str(e.value).startswith("field 'prompt'") and "\n" not in str(e.value)


def test_output_folder_is_created_and_blockers_are_named(tmp_path):
    out = prepare_output_file(tmp_path / "a" / "b" / "x.webp")
    assert out.parent.is_dir() and not out.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        prepare_output_file(tmp_path / "file" / "x.webp")
    with pytest.raises(UserError, match="is a folder"):
        prepare_output_file(tmp_path / "a")


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new", fsync=True)
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_keeps_the_old_file_and_removes_the_temp(tmp_path, exc):
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(exc):
        with atomic_path(target) as tmp:
            assert is_partial(tmp) and tmp.parent == tmp_path
            tmp.write_text("half")
            raise exc()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_atomic_folder_replaces_the_old_one(tmp_path):
    dest = tmp_path / "pkg"
    (dest / "stale").mkdir(parents=True)
    with atomic_path(dest, folder=True) as tmp:
        (tmp / "fresh.txt").write_text("x")
    assert [p.name for p in dest.iterdir()] == ["fresh.txt"] and [p.name for p in tmp_path.iterdir()] == ["pkg"]
