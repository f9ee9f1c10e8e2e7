"""The one prompts.json parser: typed entries, and one-line errors naming the file, entry and expectation."""

from __future__ import annotations

import json

import pytest

from animated_stickers.errors import UserError
from animated_stickers.prompts_file import read_prompts_file


def test_entries_are_typed_and_resolved_against_the_files_folder(tmp_path):
    (tmp_path / "cat.png").write_bytes(b"x")
    p = tmp_path / "prompts.json"
    p.write_text(json.dumps([{"image": "cat.png", "prompt": "waving"}, {"image": "sub/dog.png", "prompt": "jumping"}]))
    a, b = read_prompts_file(p)
    assert (a.image, a.prompt, a.name, a.stem) == (tmp_path / "cat.png", "waving", "cat.png", "cat")
    assert b.image == tmp_path / "sub" / "dog.png" and b.stem == "dog"
    with pytest.raises(UserError, match=r"entry 1: image 'sub/dog.png' is not in"):
        read_prompts_file(p, images_must_exist=True)


@pytest.mark.parametrize("content, match", [
    ("[{oops", "is not valid JSON"), ("[]", "expected a non-empty JSON list"), ('{"a": 1}', "non-empty JSON list"),
    ('[{"image": "a.png", "prompt": "x"}, {"image": 3, "prompt": "y"}]', "entry 1: expected"),
    ('[{"image": "", "prompt": "x"}]', "entry 0: expected"),
    ('[{"image": "a.png", "prompt": "x\\u0000"}]', "entry 0: contains a NUL"),
    ('[{"image": "a.png", "prompt": "x"}, {"image": "a.jpg", "prompt": "y"}]', "entry 1: image stem 'a' appears twice"),
])
def test_bad_files_are_one_line_errors_naming_file_and_entry(tmp_path, content, match):
    p = tmp_path / "prompts.json"
    p.write_text(content)
    with pytest.raises(UserError, match=match) as e:
        read_prompts_file(p)
    assert str(e.value).startswith(f"'{p}'") and "\n" not in str(e.value)
