"""HITL inputs are untrusted (issue 29): prompts.json paths stay in their folder, images, manifests and SQLite
stores are checked up front, and counts and prompt lengths are refused before any work, each with one
`error:` line (exit 2) naming the file and entry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from animated_stickers.eval.human.store import Store
from animated_stickers.hitl.inputs import MAX_PER_PROMPT, MAX_PROMPTS
from animated_stickers.models.checkpoint import save_model
from sampling_support import one_error_line, sticker, tiny_model
from sampling_support import run_cli as run


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return save_model(tiny_model(), tmp_path_factory.mktemp("t") / "teacher")


def prompt_folder(root: Path, entries: list[dict], images: dict[str, bytes] | None = None) -> Path:
    """A prompts folder: prompts.json with `entries`; every image a valid PNG unless `images` says otherwise."""
    folder = root / "prompts"
    folder.mkdir(parents=True)
    for e in entries:
        path = folder / e["image"]
        if path.resolve().is_relative_to(folder.resolve()):
            sticker(48, 40).save(path)
    for name, data in (images or {}).items():
        (folder / name).write_bytes(data)
    (folder / "prompts.json").write_text(json.dumps(entries))
    return folder


def generate(tmp_path, prompts: Path, teacher: Path, *extra):
    out = tmp_path / "cands"
    r = run("hitl", "generate", "--prompts", prompts, "--out", out, "--model", f"t={teacher}", "--steps", "1",
            "--threads", "1", *extra)
    return r, out


def test_an_image_path_outside_the_prompts_folder_is_refused(tmp_path, teacher):
    (tmp_path / "secret.png").write_bytes(b"not for you")
    prompts = prompt_folder(tmp_path, [{"image": "a.png", "prompt": "wave"},
                                       {"image": "../secret.png", "prompt": "wave"}])
    r, out = generate(tmp_path, prompts, teacher)
    line = one_error_line(r)
    assert "prompts.json' entry 1" in line and "'../secret.png' is outside" in line
    assert not out.exists()
    (prompts / "prompts.json").write_text(json.dumps([{"image": "../../../../etc/passwd", "prompt": "wave"}]))
    assert "entry 0: image '../../../../etc/passwd' is outside" in one_error_line(generate(tmp_path, prompts,
                                                                                           teacher)[0])


def test_a_corrupt_image_is_named_before_any_model_loads(tmp_path, teacher):
    png = (Path(__file__).parent.parent / "examples" / "smiling-face-with-heart-eyes.png").read_bytes()
    prompts = prompt_folder(tmp_path, [{"image": "a.png", "prompt": "wave"}, {"image": "b.png", "prompt": "hop"}],
                            {"b.png": png[: len(png) // 3]})  # cut short mid-IDAT
    r, out = generate(tmp_path, prompts, teacher)
    line = one_error_line(r)
    assert "entry 1" in line and "b.png" in line and "could not be decoded" in line
    assert not out.exists()
    stills = tmp_path / "stills"
    stills.mkdir()
    (stills / "1f600.png").write_bytes(png[:200])  # `hitl prompts` reads stills the same way
    line = one_error_line(run("hitl", "prompts", "--out", tmp_path / "p", "--stills", stills, "--split", "all",
                              "--n", "3"))
    assert "1f600.png" in line and not (tmp_path / "p" / "prompts.json").exists()


def test_a_long_prompt_is_refused_before_any_work(tmp_path, teacher):
    prompts = prompt_folder(tmp_path, [{"image": "a.png", "prompt": "wave"},
                                       {"image": "b.png", "prompt": "x" * 2**20}])
    r, out = generate(tmp_path, prompts, teacher)
    line = one_error_line(r)
    assert "entry 1: prompt has 1048576 characters: expected at most 500" in line
    assert not out.exists()


def test_counts_have_upper_bounds_refused_at_once(tmp_path, teacher):
    t0 = time.perf_counter()
    line = one_error_line(run("hitl", "prompts", "--out", tmp_path / "p", "--n", "99999999999999999999"))
    assert f"--n 99999999999999999999: expected 1 to {MAX_PROMPTS:,}" in line
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "p").exists()
    prompts = prompt_folder(tmp_path, [{"image": "a.png", "prompt": "wave"}])
    assert f"expected 1 to {MAX_PER_PROMPT}" in one_error_line(generate(tmp_path, prompts, teacher,
                                                                        "--per-prompt", "100000")[0])
    assert "--threads -2: expected 0" in one_error_line(generate(tmp_path, prompts, teacher, "--threads", "-2")[0])
    assert "--seed 2147483647: expected 0 to 2147483642 for 6 stickers" in one_error_line(
        generate(tmp_path, prompts, teacher, "--seed", str(2**31 - 1))[0])
    many = [{"image": f"p{i}.png", "prompt": "wave"} for i in range(MAX_PROMPTS + 1)]
    (prompts / "prompts.json").write_text(json.dumps(many))
    assert f"has {MAX_PROMPTS + 1:,} entries: expected at most {MAX_PROMPTS:,}" in one_error_line(
        generate(tmp_path, prompts, teacher)[0])


def _candidates(root: Path, manifest: str | dict) -> Path:
    folder = root / "cands"
    (folder / "t@0").mkdir(parents=True)
    (folder / "prompts.json").write_text(json.dumps([{"image": "a.png", "prompt": "wave"}]))
    (folder / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return folder


@pytest.mark.parametrize("manifest, words", [
    ('{"prompts": "x", "jobs": [', "manifest.json' is not readable JSON"),
    ([1, 2], "expected an object with 'prompts'"),
    ({"prompts": "x", "jobs": [{"file": 3}]}, "job 0: expected"),
    ({"prompts": "x", "jobs": [{"file": "../../../etc/passwd", "stem": "a", "done": True}]}, "is outside"),
])
def test_a_broken_candidates_manifest_is_one_line(tmp_path, manifest, words):
    cands = _candidates(tmp_path, manifest)
    line = one_error_line(run("hitl", "select", "--candidates", cands, "--job", "j", "--db", tmp_path / "h.sqlite",
                              "--auto"))
    assert words in line and str(cands / "manifest.json") in line


def test_a_garbage_sqlite_file_is_one_line(tmp_path):
    cands = _candidates(tmp_path, {"prompts": str(tmp_path), "jobs": []})
    garbage = tmp_path / "h.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    for args in (["select", "--candidates", cands, "--job", "j"],
                 ["finetune", "--candidates", cands, "--job", "j", "--out", tmp_path / "s", "--init", tmp_path,
                  "--data", tmp_path]):
        line = one_error_line(run("hitl", *args, "--db", garbage))
        assert f"'{garbage}' is not an intact SQLite database" in line
    Store(str(tmp_path / "good.sqlite")).close()  # a real store passes the check (and the job is unknown)
    line = one_error_line(run("hitl", "finetune", "--candidates", cands, "--job", "j", "--out", tmp_path / "s",
                              "--init", tmp_path, "--data", tmp_path, "--db", tmp_path / "good.sqlite"))
    assert "no HITL job of that name" in line
    header = (tmp_path / "good.sqlite").read_bytes()[:100]
    (tmp_path / "cut.sqlite").write_bytes(header + b"\0" * 4000)  # the right magic, pages cut away
    assert "not an intact SQLite database" in one_error_line(
        run("hitl", "select", "--candidates", cands, "--job", "j", "--db", tmp_path / "cut.sqlite"))
