"""`stickers animate / generate / bench` through the real Typer app: outputs, and one-line errors for
every bad input with a non-zero exit and no output file left behind."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from animated_stickers.cli import app
from animated_stickers.export.formats import read_frames
from animated_stickers.models.checkpoint import save_model
from sampling_support import one_thread, sticker, tiny_model  # noqa: F401 (one_thread: autouse fixture)

FAST = ["--steps", "2", "--guided-steps", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_model(tiny_model(), root / "video")
    save_model(tiny_model(video=False), root / "t2i")
    return root


@pytest.fixture
def images(tmp_path):
    a, b = tmp_path / "cat.png", tmp_path / "dog.png"
    sticker(96, 64, seed=1).save(a)
    sticker(50, 80, seed=2).save(b)
    return a, b


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_animate_one_image_writes_a_looping_rgba_webp_and_frames(models, images, tmp_path):
    out, frames_dir = tmp_path / "out" / "cat.webp", tmp_path / "frames"
    out.parent.mkdir()
    r = run("animate", images[0], "--prompt", "waving hello", "--out", out, "--model", models / "video",
            "--frames-out", frames_dir, "--seed", "3", "--paste-input", *FAST)
    assert r.exit_code == 0, r.output
    frames, fps = read_frames(out)
    assert len(frames) == 8 and fps == pytest.approx(8.0)
    assert frames[0].size == (96, 64) and frames[0].mode == "RGBA"
    with Image.open(out) as im:
        assert im.info.get("loop") == 0  # loops forever
    # With --paste-input the conditioning frame (4th of 8) is the input sticker itself (lossless WebP; the colour hidden
    # under alpha 0 is the writer's business).
    got, want = np.asarray(frames[3]), np.asarray(Image.open(images[0]).convert("RGBA"))
    visible = want[..., 3] > 0
    assert np.array_equal(got[..., 3], want[..., 3]) and np.array_equal(got[visible], want[visible])
    assert sorted(p.name for p in frames_dir.iterdir()) == [f"cat_{i:02d}.png" for i in range(8)]


def test_animate_creates_the_output_folder_when_missing(models, images, tmp_path):
    # The README's first command writes to out/smiling.webp in a fresh clone, where out/ does not exist.
    out = tmp_path / "new" / "deeper" / "cat.webp"
    r = run("animate", images[0], "--prompt", "smiling", "--out", out, "--model", models / "video", *FAST)
    assert r.exit_code == 0, r.output
    assert len(read_frames(out)[0]) == 8
    assert [p.name for p in out.parent.iterdir()] == ["cat.webp"]  # no temp file left beside it


def test_several_images_go_to_a_folder_named_by_stem(models, images, tmp_path):
    out = tmp_path / "results"
    r = run("animate", *images, "-p", "waving", "-p", "jumping", "--out", out, "--format", "gif",
            "--model", models / "video", *FAST)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["cat.gif", "dog.gif"]
    assert Image.open(out / "dog.gif").size == (50, 80)


def test_folder_form_reads_prompts_json(models, images, tmp_path):
    inputs, outputs = images[0].parent, tmp_path / "anim"
    (inputs / "prompts.json").write_text(json.dumps([{"image": "cat.png", "prompt": "waving"},
                                                     {"image": "dog.png", "prompt": "wagging its tail"}]))
    r = run("animate", "--inputs", inputs, "--outputs", outputs, "--model", models / "video", *FAST)
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in outputs.iterdir())
    assert names == [".cat.webp.json", ".dog.webp.json", "cat.webp", "dog.webp"]  # + hidden rerun sidecars


def test_generate_runs_the_factorised_pipeline(models, tmp_path):
    out, still = tmp_path / "gen.png", tmp_path / "still.png"
    r = run("generate", "--prompt", "a cat waving", "--out", out, "--still-out", still,
            "--t2i-model", models / "t2i", "--model", models / "video", "--steps", "2", "--threads", "1")
    assert r.exit_code == 0, r.output
    assert Image.open(still).size == (64, 64)
    frames, _ = read_frames(out)
    assert len(frames) == 8


def png_header_only(path: Path, w: int, h: int) -> None:
    """A PNG that claims w x h pixels (IHDR only, no image data): enough to test size checks."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
                     + chunk(b"IEND", b""))


def corrupt_model(models: Path, tmp: Path) -> Path:
    bad = tmp / "corrupt"
    shutil.copytree(models / "video", bad)
    data = (bad / "unet.safetensors").read_bytes()
    (bad / "unet.safetensors").write_bytes(data[: len(data) // 3])
    return bad


BAD_INPUTS = {
    "missing file": (lambda d, m: ["animate", d / "nope.png"], "does not exist"),
    "not an image": (lambda d, m: ["animate", d / "notes.png"], "is not an image"),
    "1x1 image": (lambda d, m: ["animate", d / "dot.png"], "1x1 px"),
    "20,000 px image": (lambda d, m: ["animate", d / "huge.png"], "at most 8192 px"),
    "empty prompt": (lambda d, m: ["animate", d / "cat.png", "--prompt", "  "], "is empty"),
    "10,000-character prompt": (lambda d, m: ["animate", d / "cat.png", "--prompt", "x" * 10_000],
                                "10000 characters"),
    "control character in prompt": (lambda d, m: ["animate", d / "cat.png", "--prompt", "wave\x1b[2J"],
                                    "control character (U+001B)"),
    "output folder is a file": (lambda d, m: ["animate", d / "cat.png", "--out", d / "notes.png" / "x.webp"],
                                "is not a folder"),
    "unknown model folder": (lambda d, m: ["animate", d / "cat.png", "--model", d / "no-model"], "does not exist"),
    "corrupted weights": (lambda d, m: ["animate", d / "cat.png", "--model", corrupt_model(m, d)], "corrupted"),
    "unsupported output suffix": (lambda d, m: ["animate", d / "cat.png", "--out", d / "out" / "x.jpg"],
                                  "unsupported suffix"),
    "bad prompts.json": (lambda d, m: ["animate", "--inputs", d, "--outputs", d / "out"], "not valid JSON"),
    "zero fps": (lambda d, m: ["animate", d / "cat.png", "--fps", "0"], "fps=0"),
    "unknown preset": (lambda d, m: ["animate", d / "cat.png", "--preset", "myspace"], "myspace"),
    "unknown render": (lambda d, m: ["animate", d / "cat.png", "--render", "paint"], "expected one of warp, fuse"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_error_line_and_no_output(case, models, images, tmp_path):
    d = images[0].parent
    (d / "notes.png").write_text("hello")
    Image.new("RGBA", (1, 1)).save(d / "dot.png")
    png_header_only(d / "huge.png", 20_000, 20_000)
    (d / "prompts.json").write_text("[{oops")
    (d / "out").mkdir()
    build, expected = BAD_INPUTS[case]
    args = build(d, models)
    if "--out" not in args and "--outputs" not in args:
        args += ["--out", d / "out" / "result.webp"]
    if "--model" not in args:
        args += ["--model", models / "video"]
    if "--prompt" not in args and "--inputs" not in args:
        args += ["--prompt", "waving"]
    r = run(*args, *FAST)
    assert r.exit_code != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert expected in lines[0]
    assert list((d / "out").iterdir()) == []  # nothing written, not even a temp file


def test_missing_default_weights_is_one_clear_line(images, tmp_path, monkeypatch):
    from animated_stickers.sampling import cli, onnx_pipeline, paths, pipeline

    for module in (pipeline, onnx_pipeline, cli):  # both engines look for the default model
        monkeypatch.setattr(module, "DEFAULT_MODEL_DIR", tmp_path / "weights" / "tiny")
    # Without the default motion model the default path is the video one, whose model is missing too.
    monkeypatch.setattr(paths, "DEFAULT_MOTION_DIR", tmp_path / "weights" / "motion")
    for args in ((), ("--path", "video")):
        r = run("animate", images[0], "--prompt", "waving", "--out", tmp_path / "o.webp", *args)
        assert r.exit_code != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "default model" in r.stderr and "--model" in r.stderr
        assert not (tmp_path / "o.webp").exists()


def test_generate_refuses_a_video_model_as_text_to_image(models, tmp_path):
    r = run("generate", "--prompt", "a cat", "--out", tmp_path / "g.webp", "--t2i-model", models / "video",
            "--model", models / "video", "--steps", "2")
    assert r.exit_code != 0 and "expected a 't2i' model" in r.stderr
    assert not (tmp_path / "g.webp").exists()


def test_bench_json_reports_nfe_floor_and_memory(models):
    r = run("bench", "--json", "--model", models / "video", "--configs", "dpm15-adaptive", "--batch", "2",
            "--threads", "1")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    (row,) = result["configs"]
    assert row["name"] == "dpm15-adaptive" and row["nfe"] == 31 and row["unet_calls"] == 15
    for key in ("seconds_per_sticker", "seconds_per_sticker_batch2", "floor_seconds"):
        assert row[key] > 0
    assert 0.5 < row["floor_ratio"] < 5 and "peak_memory_mb" in row
    assert result["cross_attention"]["layers"] > 0


def test_bench_resolutions_times_each_canvas_and_rejects_bad_sizes(tmp_path):
    r = run("bench", "--resolutions", "32,64", "--json", "--threads", "1", "--save", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    assert [row["resolution"] for row in rows] == [32, 64]
    assert [row["latent"][2] for row in rows] == [4, 8]  # f8 VAE: the latents grow with the canvas
    assert rows[0]["train_step_x"] == 1.0 and rows[0]["sample_x"] == 1.0
    assert all(row["train_step_s"] > 0 and row["sample_s"] > 0 for row in rows)
    assert json.loads((tmp_path / "r.json").read_text())["rows"][1]["resolution"] == 64
    bad = run("bench", "--resolutions", "128,abc")
    assert bad.exit_code != 0 and "--resolutions '128,abc'" in bad.stderr
    bad = run("bench", "--resolutions", "100")
    assert bad.exit_code != 0 and "--resolutions 100" in bad.stderr


def test_room_draws_a_full_sticker_smaller_for_its_motion_and_no_room_keeps_its_size(models, images, tmp_path):
    args = [images[0], "--prompt", "sliding left and right", "--model", models / "video", *FAST]
    assert run("animate", *args, "--out", tmp_path / "room.webp").exit_code == 0
    assert run("animate", *args, "--no-room", "--out", tmp_path / "kept.webp").exit_code == 0
    room, kept = (np.asarray(read_frames(tmp_path / f"{n}.webp")[0][3])[..., 3].astype(float) for n in ("room", "kept"))
    # The ellipse spans 80% of its width: sliding it by its full amplitude needs room on the canvas.
    assert room.sum() < 0.95 * kept.sum()
