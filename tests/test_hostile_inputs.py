"""Hostile inputs end in one `error:` line with exit code 2 (or a valid result), never a traceback:
corrupted model folders, PNG metadata bombs, frame/pixel budgets, out-of-range numbers (checked before a
model loads), signals; `--inputs/--outputs` reruns skip only what their sidecars vouch for."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from animated_stickers.data.animation import AnimationReadError, decode_animation, read_animation
from animated_stickers.io_limits import MAX_DECODE_PIXELS, MAX_WORK_SIDE
from animated_stickers.models.checkpoint import ModelLoadError, load_model, save_model
from animated_stickers.sampling.params import MAX_SEED
from animated_stickers.sampling.preprocess import load_image
from sampling_support import one_error_line, one_thread, sticker, tiny_model  # noqa: F401 (one_thread: autouse fixture)
from sampling_support import run_cli as run

FAST = ["--steps", "2", "--guided-steps", "1", "--threads", "1"]



@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model(tiny_model(), tmp_path_factory.mktemp("m") / "video")


@pytest.fixture
def png(tmp_path):
    p = tmp_path / "cat.png"
    sticker(96, 64, seed=1).save(p)
    return p


# ----------------------------------------------------------------------------- crafted files

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, kind: bytes, inflated_mb: int) -> Path:
    """A valid 32x32 RGBA PNG plus a zTXt or iCCP chunk that inflates to `inflated_mb` MB of zeros."""
    payload = zlib.compress(b"\0" * (inflated_mb * 2**20), 9)
    extra = b"Comment\0\0" + payload if kind == b"zTXt" else b"icc\0\0" + payload
    raw = b"".join(b"\0" + b"\xff" * 32 * 4 for _ in range(32))  # 32 rows, filter byte + RGBA
    body = (_chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 6, 0, 0, 0)) + _chunk(kind, extra)
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def huge_screen_gif(path: Path, side: int = 4000, frames: int = 40) -> Path:
    """A tiny GIF: `frames` one-pixel frames on a side x side logical screen (hundreds of bytes)."""
    out = [b"GIF89a", struct.pack("<HHBBB", side, side, 0x80, 0, 0), b"\0\0\0\xff\xff\xff",
           b"!\xff\x0bNETSCAPE2.0\x03\x01\0\0\0"]
    for i in range(frames):
        out += [b"!\xf9\x04\x00\x0a\x00\x00\x00", b",", struct.pack("<HHHHB", i, i, 1, 1, 0), b"\x02\x02\x44\x01\x00"]
    path.write_bytes(b"".join(out) + b";")
    return path


# ----------------------------------------------------------------------------- model folders

def test_nan_weight_is_named_at_load(tmp_path, model_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in model_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    state = load_file(str(bad / "unet.safetensors"))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[5]
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, str(bad / "unet.safetensors"))
    with pytest.raises(ModelLoadError, match=f"tensor '{name}' holds NaN"):
        load_model(bad)


def test_flipped_header_bytes_and_shape_mismatch_name_the_file_and_tensor(tmp_path, model_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in model_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    data = bytearray((bad / "vae.safetensors").read_bytes())
    data[20:40] = b"\xff" * 20  # inside the JSON header
    (bad / "vae.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="vae.safetensors' is corrupted"):
        load_model(bad)
    (bad / "vae.safetensors").write_bytes((model_dir / "vae.safetensors").read_bytes())
    state = load_file(str(bad / "unet.safetensors"))
    name = next(k for k, v in state.items() if v.dim() == 4)
    state[name] = torch.zeros(3, *state[name].shape[1:])
    save_file(state, str(bad / "unet.safetensors"))
    with pytest.raises(ModelLoadError, match=rf"tensor '{name}' has shape \(3, .*config.json expects"):
        load_model(bad)


@pytest.mark.parametrize("change, key", [
    (lambda m: m["model"].update(num_frames=0), "num_frames=0"),
    (lambda m: m["model"].update(cond_frame=99), "cond_frame=99"),
    (lambda m: m["model"].update(resolution=-128), "resolution=-128"),
    (lambda m: m["model"].update(vae=[1, 2]), "'vae'"),
    (lambda m: m.update(model=[1, 2]), "key 'model' is list"),
])
def test_bad_config_json_is_one_line_naming_the_key(tmp_path, model_dir, png, change, key):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in model_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    meta = json.loads((bad / "config.json").read_text())
    change(meta)
    (bad / "config.json").write_text(json.dumps(meta))
    line = one_error_line(run("animate", png, "-p", "wave", "-o", tmp_path / "o.webp", "--model", bad, *FAST))
    assert key in line and "expected" in line
    (bad / "config.json").write_text("[1, 2, 3]")
    assert "expected an object" in one_error_line(run("animate", png, "-p", "wave", "-o", tmp_path / "o.webp",
                                                      "--model", bad, *FAST))


def test_nan_latents_stop_before_decoding(tmp_path, png):
    model = tiny_model()
    with torch.no_grad():
        model.unet.unet.conv_out.bias.fill_(float("inf"))  # finite checks on load are bypassed in memory
    folder = tmp_path / "m"
    model.source = str(folder)
    from animated_stickers.sampling.pipeline import AnimatePipeline

    with pytest.raises(ModelLoadError, match=f"model '{folder}' sampled NaN or infinite latents"):
        AnimatePipeline(model).animate([sticker(64, 64)], ["wave"], model.sampling)


# ----------------------------------------------------------------------------- images and budgets

@pytest.mark.parametrize("kind, mb", [(b"zTXt", 64), (b"iCCP", 200)])
def test_png_metadata_bomb_is_one_line(tmp_path, model_dir, kind, mb):
    bomb = bomb_png(tmp_path / "bomb.png", kind, mb)
    assert bomb.stat().st_size < 300_000
    line = one_error_line(run("animate", bomb, "-p", "wave", "-o", tmp_path / "o.webp", "--model", model_dir, *FAST))
    assert "bomb.png" in line and "metadata chunk" in line
    assert not (tmp_path / "o.webp").exists()


def test_gif_with_huge_screen_is_refused_before_decoding(tmp_path):
    gif = huge_screen_gif(tmp_path / "g.gif")
    assert gif.stat().st_size < 2000
    with pytest.raises(AnimationReadError, match=r"4000x4000 px x 40 frames .*expected at most"):
        read_animation(gif)
    with pytest.raises(AnimationReadError, match="frames x width x height"):
        decode_animation(gif.read_bytes(), ".gif")
    assert decode_animation(gif.read_bytes(), ".gif", indices=[0]).frames.shape == (1, 4000, 4000, 4)  # 1 frame
    line = one_error_line(run("export", gif, "--preset", "gif", "--out", tmp_path / "o.gif"))
    assert "g.gif" in line and f"{MAX_DECODE_PIXELS:,}" in line
    assert not (tmp_path / "o.gif").exists()
    # Within the budget the same kind of file still reads.
    small = huge_screen_gif(tmp_path / "s.gif", side=64, frames=4)
    assert read_animation(small).frames.shape == (4, 64, 64, 4)


def test_large_still_is_worked_at_the_documented_size(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGBA", (4400, 2200), (200, 10, 10, 255)).save(big, compress_level=1)
    im = load_image(big)
    assert im.size == (MAX_WORK_SIDE, MAX_WORK_SIDE // 2)


# ----------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("extra, words", [
    (["--seed", "99999999999999999999"], "--seed 99999999999999999999: expected 0 to"),
    (["--seed", "-1"], "expected 0 to"),
    (["--batch-size", "0"], "--batch-size 0: expected 1 or more"),
])
def test_out_of_range_numbers_are_one_line(tmp_path, model_dir, png, extra, words):
    line = one_error_line(run("animate", png, "-p", "wave", "-o", tmp_path / "o.webp", "--model", model_dir,
                              *FAST, *extra))
    assert words in line


def _anim(path: Path, frames: int = 6) -> Path:
    ims = [Image.new("RGBA", (32, 32), (i * 40, 0, 0, 255)) for i in range(frames)]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=125, loop=0, lossless=True)
    return path


@pytest.mark.parametrize("value", ["-1", "100"])
def test_export_cond_frame_out_of_range(tmp_path, value):
    src = _anim(tmp_path / "a.webp")
    line = one_error_line(run("export", src, "--preset", "gif", "--cond-frame", value, "--out", tmp_path / "o.gif"))
    assert f"--cond-frame {value}: expected 0 to" in line
    assert not (tmp_path / "o.gif").exists()


def test_export_out_existing_folder(tmp_path):
    src = _anim(tmp_path / "a.webp")
    (tmp_path / "dir").mkdir()
    line = one_error_line(run("export", src, "--preset", "gif", "--out", tmp_path / "dir"))
    assert "is a folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.webp", "dir"]


# ----------------------------------------------------------------------------- failures and signals

def test_failed_multi_image_run_leaves_no_new_folder(tmp_path, model_dir, png):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    out = tmp_path / "new" / "outs"
    one_error_line(run("animate", png, broken, "-p", "wave", "-o", out, "--model", model_dir, *FAST))
    assert not out.exists()


def test_interrupted_frames_out_leaves_no_partial_set(tmp_path):
    from animated_stickers.sampling.cli import _write_frames

    frames = [sticker(32, 32, seed=i) for i in range(4)] + [None]  # the 5th frame fails mid-write
    with pytest.raises(AttributeError):
        _write_frames(frames, tmp_path / "frames", "cat")
    assert list((tmp_path / "frames").iterdir()) == []  # no partial set, no temp folder
    _write_frames(frames[:4], tmp_path / "frames", "cat")
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"cat_{i:02d}.png" for i in range(4)]


def test_sigterm_runs_the_same_cleanup_as_ctrl_c(tmp_path):
    from animated_stickers.errors import exit_on_sigterm
    from animated_stickers.export.formats import atomic_output

    old = signal.getsignal(signal.SIGTERM)
    try:
        exit_on_sigterm()
        with pytest.raises(SystemExit) as e, atomic_output(tmp_path / "out.webp") as tmp:
            tmp.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        assert e.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, old)
    assert list(tmp_path.iterdir()) == []


def _spawn(args: list, tmp_path: Path) -> subprocess.Popen:
    code = "from animated_stickers.cli import main; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_sigterm_to_the_real_cli_leaves_no_partial_files(tmp_path, model_dir):
    """SIGTERM the real CLI once it is sampling: exit 143, no output, no .part file, no frames."""
    frames_dir, out = tmp_path / "frames", tmp_path / "out.webp"
    sticker(96, 64, seed=1).save(tmp_path / "c.png")
    proc = _spawn(["animate", tmp_path / "c.png", "-p", "wave", "-o", out, "--model", model_dir,
                   "--frames-out", frames_dir, "--steps", "200", "--guided-steps", "1", "--threads", "1"], tmp_path)
    deadline = time.monotonic() + 120
    buf = b""
    while b"step" not in buf and time.monotonic() < deadline and proc.poll() is None:
        buf += os.read(proc.stdout.fileno(), 256)  # the progress bar appears once sampling runs
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, buf.decode(errors="replace")[-2000:]
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".part") or p.name.startswith(".")]
    assert leftovers == [] and not out.exists()
    assert not frames_dir.exists() or list(frames_dir.iterdir()) == []


# ----------------------------------------------------------------------------- options before models (issue 29)

@pytest.mark.parametrize("extra, words", [
    (["--fps", "1e12"], "--fps=1000000000000.0: too fast: expected 0.1 to 100 frames per second"),
    (["--fps", "1e-9"], "--fps=1e-09: too slow"),
    (["-o", "o.gif", "--fps", "60"], "GIF plays at most 50 fps"),
    (["--threads", "-1"], "--threads -1: expected 0 (all"),
    (["--steps", "0"], "steps=0: expected 1 to 1000"),
    (["--frames", "99"], "frames=99: expected 2 to 32"),
    (["--cond-frame", "40"], "cond_frame=40: expected 0 to 31"),
    (["--engine", "gpu"], "--engine 'gpu': expected one of"),
])
def test_options_are_checked_before_any_model_loads(tmp_path, png, extra, words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    out = [] if "-o" in extra else ["-o", "o.webp"]
    # The model folder does not exist: only a check that runs before loading can answer first.
    line = one_error_line(run("animate", png, "-p", "wave", *out, "--model", tmp_path / "no-model", *extra))
    assert words in line
    assert time.perf_counter() - t0 < 5 and not list(tmp_path.glob("o.*"))


def test_every_sticker_of_a_call_gets_a_seed_in_the_range(tmp_path, png, model_dir):
    other = tmp_path / "dog.png"
    sticker(64, 64, seed=2).save(other)
    line = one_error_line(run("animate", png, other, "-p", "wave", "-o", tmp_path / "outs", "--model", model_dir,
                              "--seed", MAX_SEED, *FAST))
    assert f"--seed {MAX_SEED}: expected 0 to {MAX_SEED - 1} for 2 stickers" in line
    assert run("animate", png, "-p", "wave", "-o", tmp_path / "o.webp", "--model", model_dir, "--seed", MAX_SEED,
               *FAST).exit_code == 0  # one sticker: the top of the range is fine


def _inputs(tmp_path: Path, prompts: list[str]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for i, _ in enumerate(prompts):
        sticker(64, 48, seed=i).save(folder / f"s{i}.png")
    (folder / "prompts.json").write_text(json.dumps([{"image": f"s{i}.png", "prompt": p}
                                                     for i, p in enumerate(prompts)]))
    return folder


def test_a_rerun_skips_only_outputs_its_sidecar_vouches_for(tmp_path, model_dir):
    inputs, outs = _inputs(tmp_path, ["wave", "hop", "spin"]), tmp_path / "out"

    def animate(*extra):
        r = run("animate", "--inputs", inputs, "--outputs", outs, "--model", model_dir, *FAST, *extra)
        assert r.exit_code == 0, r.output
        stamps = {p.name: p.stat().st_mtime_ns for p in sorted(outs.glob("*.webp"))}
        return r.output, stamps

    _, first = animate("--batch-size", "3")
    assert len(first) == 3 and len(list(outs.glob(".*.webp.json"))) == 3
    frames = {n: _frames_of(outs / n) for n in first}
    text, again = animate()
    assert "skipped 3 of 3" in text and again == first  # nothing made again
    (outs / "s1.webp").unlink()  # as a run killed before its second sticker leaves it
    text, after_kill = animate("--batch-size", "1")
    assert "skipped 2 of 3" in text and after_kill["s0.webp"] == first["s0.webp"]
    assert np.array_equal(_frames_of(outs / "s1.webp"), frames["s1.webp"])  # sticker 1 keeps seed + 1
    (inputs / "prompts.json").write_text((inputs / "prompts.json").read_text().replace("spin", "spinning"))
    text, edited = animate()
    assert "skipped 2 of 3" in text and edited["s2.webp"] != after_kill["s2.webp"]
    text, reseeded = animate("--seed", "5")
    assert "skipped" not in text and all(reseeded[n] != edited[n] for n in first)
    text, redone = animate("--seed", "5", "--overwrite")
    assert "skipped" not in text and all(redone[n] != reseeded[n] for n in first)


def _frames_of(path: Path) -> np.ndarray:
    from animated_stickers.export.formats import read_frames

    return np.stack([np.asarray(f) for f in read_frames(path)[0]])
