"""The motion path (issue 28): the learned motion model as `stickers animate`'s default, with real parts only: a tiny
random MotionNet saved as a model folder, the real MiniLM text encoder, the real CLI, HTTP service and eval."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from animated_stickers.config import MAX_FRAMES, MOTION_PRESETS, PATHS, cond_index_for
from animated_stickers.export.formats import read_frames
from animated_stickers.models.checkpoint import save_model
from animated_stickers.models.motion_net import MotionNet, motion_config, save_motion_model
from animated_stickers.motion.procedural import procedural_motion_names
from animated_stickers.motion.words import prompt_request
from animated_stickers.rgba import premultiply
from animated_stickers.sampling import motion_pipeline, paths
from animated_stickers.sampling.motion_model import motion_volume, render_frames
from animated_stickers.sampling.motion_pipeline import MotionPipeline, preset_move
from animated_stickers.sampling.paths import choose_path
from animated_stickers.sampling.preprocess import prepare_sticker
from animated_stickers.sampling.resume import recorded_loop, sidecar_path
from sampling_support import one_error_line, one_thread, run_cli, sticker, tiny_model  # noqa: F401 (autouse)

TINY_MOTION = {"block_out_channels": [16, 32], "attention_blocks": [False, True], "head_dim": 8, "norm_num_groups": 8,
               "size": 16, "still_size": 32, "text": {"kind": "minilm", "max_length": 8}}
FAST = ["--steps", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def motion_dir(tmp_path_factory):
    """A tiny random motion model folder, fp16 like the bundled one will be."""
    torch.manual_seed(0)
    return save_motion_model(MotionNet(motion_config(TINY_MOTION)), tmp_path_factory.mktemp("motion") / "motion",
                             dtype=torch.float16)


@pytest.fixture(scope="module")
def pipe(motion_dir):
    return MotionPipeline.from_dir(motion_dir)


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video") / "video"
    save_model(tiny_model(), folder)
    return folder


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "cat.png"
    sticker(96, 64, seed=1).save(path)
    return path


def frames_of(path: Path) -> tuple[np.ndarray, float]:
    """An animation file read back: (T, H, W, 4) uint8 frames and its fps."""
    frames, fps = read_frames(path)
    return np.stack([np.asarray(f.convert("RGBA")) for f in frames]), fps


def animate(pipe, prompt: str = "a cat", **changes) -> list[np.ndarray]:
    """One sticker through the pipeline (2 steps, 48 frames unless changed): its frames as uint8 arrays."""
    s = prepare_sticker(sticker(96, 64, seed=1), "cat", pipe.resolution)
    params = dataclasses.replace(pipe.sampling, steps=2, **({"num_frames": 48} | changes))
    return [np.asarray(f) for f in pipe.animate_stickers([s], [prompt], params)[0]]


# ----------------------------------------------------------------------------- the default path


def test_the_motion_model_is_the_default_when_its_folder_exists(motion_dir, png, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DEFAULT_MOTION_DIR", motion_dir)
    out = tmp_path / "o.webp"
    r = run_cli("animate", png, "-p", "a cat", "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    frames, fps = frames_of(out)
    assert len(frames) == 48 and fps == pytest.approx(24.0)  # 24 fps x 2 s
    assert "note:" not in r.output


def test_without_the_motion_model_the_video_path_runs_and_says_so_once(tmp_path, monkeypatch, video_dir, png):
    monkeypatch.setattr(paths, "DEFAULT_MOTION_DIR", tmp_path / "weights" / "motion")
    path, note = choose_path(None, None, None)
    assert path == "video" and note.startswith("note: no motion model in") and "\n" not in note
    assert choose_path(None, video_dir, None) == ("video", None)  # a video model given: the video path, no note
    r = run_cli("animate", png, "-p", "a cat", "-o", tmp_path / "v.webp", "--model", video_dir, *FAST)
    assert r.exit_code == 0, r.output
    frames, fps = frames_of(tmp_path / "v.webp")
    assert len(frames) == 8 and fps == pytest.approx(8.0)  # the paper's loop, unchanged


def test_one_rule_decides_the_conditioning_frame_of_both_paths():
    assert PATHS == ("motion", "video")
    assert [cond_index_for("motion", n) for n in (8, 48, 90)] == [0, 0, 0]
    assert [cond_index_for("video", n) for n in (8, 16)] == [3, 7]


# ----------------------------------------------------------------------------- the loop


@pytest.mark.parametrize("fps, seconds, frames", [(30, 3, 90), (12, 0.5, 6), (24, 2, 48)])
def test_the_frame_count_is_fps_times_seconds(motion_dir, png, tmp_path, fps, seconds, frames):
    out = tmp_path / "o.webp"
    r = run_cli("animate", png, "-p", "a cat", "-o", out, "--motion-model", motion_dir, "--fps", fps,
                "--seconds", seconds, *FAST)
    assert r.exit_code == 0, r.output
    got, rate = frames_of(out)
    assert len(got) == frames and rate == pytest.approx(fps, rel=0.01)


def test_frame_0_is_the_stickers_own_pixels_and_the_rest_move(pipe):
    frames = animate(pipe)
    want = np.asarray(sticker(96, 64, seed=1).convert("RGBA"))
    assert frames[0].shape == want.shape and np.array_equal(frames[0], want)  # exactly, at the input's size
    assert max(np.abs(f.astype(int) - want).max() for f in frames[1:]) > 0


def test_the_loop_closes(pipe):
    pm = np.stack([premultiply(f) for f in animate(pipe)])  # (48, H, W, 4)
    steps = np.abs(np.diff(pm, axis=0)).mean(axis=(1, 2, 3))  # frame t -> t + 1
    wrap = np.abs(pm[0] - pm[-1]).mean()  # the last frame -> the first
    assert steps.max() > 0 and wrap <= 1.25 * steps.max()


def test_the_cli_output_starts_at_the_sticker(motion_dir, png, tmp_path):
    out = tmp_path / "o.webp"
    assert run_cli("animate", png, "-p", "a cat", "-o", out, "--motion-model", motion_dir, *FAST).exit_code == 0
    first = frames_of(out)[0][0]  # lossless WebP: what messengers show when the loop stops
    want = np.asarray(Image.open(png).convert("RGBA"))
    visible = want[..., 3] > 0
    assert np.array_equal(first[..., 3], want[..., 3]) and np.array_equal(first[visible], want[visible])


def _procedural_sticker(side: int = 160) -> np.ndarray:
    """A straight RGBA (side, side, 4) uint8 sticker with detail: stripes, a soft edge, a transparent hole."""
    yy, xx = np.mgrid[:side, :side] / side
    r = np.hypot(yy - 0.5, xx - 0.5)
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 0] = 128 + 100 * np.sin(40 * xx)
    rgba[..., 1] = 255 * yy
    rgba[..., 2] = 60 + 60 * (np.sin(25 * (xx + yy)) > 0)
    rgba[..., 3] = 255 * np.clip((0.42 - r) * 30, 0, 1) * (np.hypot(yy - 0.4, xx - 0.6) > 0.06)
    return rgba


@pytest.mark.parametrize("shape", [(160, 160), (96, 160)])
def test_the_8_bit_render_is_the_float_render(shape):
    """render_frames (uint8 bicubic remap + Pillow's unpremultiply) against render_motion (float): the same
    picture within 1/255 on average (premultiplied, what is seen), alpha within 1; frame `cond` exact."""
    from animated_stickers.sampling.motion_bench import smooth_volume
    from animated_stickers.sampling.motion_model import render_motion

    still = _procedural_sticker()[:shape[0]]
    volume = 4 * smooth_volume(16)  # (16, 16, 16): a bob and a sway of a few px
    fast = np.stack(list(render_frames(still, volume, 12, cond=2))).astype(np.float32) / 255  # (12, H, W, 4)
    slow = np.round(render_motion(still, volume, 12, cond=2) * 255) / 255
    assert fast.shape == slow.shape == (12, *shape, 4)
    assert np.array_equal(fast[2], still / np.float32(255))  # the sticker's own bytes
    assert np.abs(premultiply(fast) - premultiply(slow)).mean() <= 1 / 255
    assert np.abs(fast[..., 3] - slow[..., 3]).max() <= 1.01 / 255
    assert np.abs(fast[5] - fast[2]).max() > 0.2  # it moved


# ----------------------------------------------------------------------------- the prompt: text encoder only


def _imports(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {f"{node.module}.{a.name}" for a in node.names} | {node.module or ""}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_the_motion_path_never_reads_a_keyword_table():
    from animated_stickers.sampling import motion_model

    for module in (motion_pipeline, motion_model):
        used = " ".join(_imports(module))
        assert "words" not in used and "prompt_motion" not in used and "requested_components" not in used


def test_two_prompts_differ_only_through_their_text_encoding(pipe):
    """The video path's table would bounce one and spin the other; here each clip is exactly the sticker moved
    along the field the network samples from that prompt's text encoding, nothing laid over it."""
    still = np.asarray(sticker(96, 64, seed=1).convert("RGBA"))
    clips = {}
    for prompt in ("a cat bouncing", "a cat spinning"):
        assert prompt_request(prompt).words  # a prompt a keyword table would act on
        clips[prompt] = animate(pipe, prompt, seed=7)
        volume = motion_volume(pipe.engine.net, pipe.engine.text, still, prompt, 7, 2)
        direct = list(render_frames(still, volume, 48, 0))
        assert all(np.array_equal(a, b) for a, b in zip(clips[prompt], direct))
    a, b = clips.values()
    assert any(not np.array_equal(x, y) for x, y in zip(a, b))  # the text encoding changes the motion


def test_a_motion_preset_is_a_rigid_move_that_does_not_read_the_prompt(pipe):
    assert set(MOTION_PRESETS) == set(procedural_motion_names(False))  # config names what procedural knows
    plain = animate(pipe, "a cat spinning", seed=3, room=False)
    slid = animate(pipe, "a cat spinning", seed=3, room=False, motion_preset="slide")

    def centre(f):
        a = f[..., 3].astype(float)
        yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
        return np.array([(xx * a).sum(), (yy * a).sum()]) / a.sum()

    shift = np.array([centre(s) - centre(p) for s, p in zip(slid, plain)])  # (48, 2) px
    assert np.abs(shift[0]).max() < 1e-6  # at rest on frame 0: still the sticker
    assert np.abs(shift[:, 0]).max() > 3 and np.abs(shift[:, 1]).max() < 0.5  # a slide: sideways only
    # The move is a function of the preset, the sticker and the loop: the same under any prompt.
    params = dataclasses.replace(pipe.sampling, motion_preset="slide", room=False, num_frames=48)
    still = np.asarray(sticker(96, 64, seed=1).convert("RGBA"))
    move = preset_move(params, still, 48, 0)
    assert move(0) is None and all(np.array_equal(m, n) for m, n in zip(move(5), preset_move(params, still, 48, 0)(5)))
    for prompt in ("a cat spinning", "a cat bouncing wildly"):
        got = animate(pipe, prompt, seed=3, room=False, motion_preset="slide")
        volume = motion_volume(pipe.engine.net, pipe.engine.text, still, prompt, 3, 2)
        assert all(np.array_equal(a, b) for a, b in zip(got, render_frames(still, volume, 48, 0, move)))


# ----------------------------------------------------------------------------- records and eval


def test_the_sidecar_records_the_conditioning_frame_and_eval_reads_it(motion_dir, tmp_path):
    from animated_stickers.eval.auto import judge_folder

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    sticker(96, 64, seed=1).save(inputs / "cat.png")
    (inputs / "prompts.json").write_text(json.dumps([{"image": "cat.png", "prompt": "a cat"}]))
    r = run_cli("animate", "--inputs", inputs, "--outputs", outputs, "--motion-model", motion_dir, *FAST)
    assert r.exit_code == 0, r.output
    out = outputs / "cat.webp"
    assert recorded_loop(out) == {"path": "motion", "frames": 48, "fps": 24.0, "cond_index": 0}
    assert json.loads(sidecar_path(out).read_text())["settings"]["path"] == "motion"
    assert judge_folder(inputs, outputs)[0].extra["cond_index"] == {"index": 0, "from": "recorded"}
    # eval reads the record, it does not guess: another recorded index is used as it is...
    side = json.loads(sidecar_path(out).read_text())
    side["loop"]["cond_index"] = 5
    sidecar_path(out).write_text(json.dumps(side))
    assert judge_folder(inputs, outputs)[0].extra["cond_index"] == {"index": 5, "from": "recorded"}
    # ...and without a record it falls back to the frame nearest the still.
    sidecar_path(out).unlink()
    assert judge_folder(inputs, outputs)[0].extra["cond_index"]["from"] == "nearest"
    # A rerun with the same inputs skips the output (the loop record is what it is, not what made it).
    again = run_cli("animate", "--inputs", inputs, "--outputs", outputs, "--motion-model", motion_dir, *FAST)
    assert again.exit_code == 0 and "skipped" not in again.output  # the sidecar is gone: made again
    assert "skipped 1 of 1" in run_cli("animate", "--inputs", inputs, "--outputs", outputs, "--motion-model",
                                       motion_dir, *FAST).output


def test_a_preset_output_records_where_the_conditioning_frame_went(video_dir, tmp_path):
    """The video path with WhatsApp's preset: frame 3 of 8 is shown first, at 24 fps; the record says so."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    sticker(96, 64, seed=1).save(inputs / "cat.png")
    (inputs / "prompts.json").write_text(json.dumps([{"image": "cat.png", "prompt": "a cat"}]))
    r = run_cli("animate", "--inputs", inputs, "--outputs", outputs, "--model", video_dir, "--preset", "slack-emoji",
                *FAST)
    assert r.exit_code == 0, r.output
    loop = recorded_loop(outputs / "cat.gif")
    # 8 frames at 8 fps retimed to 25 fps (or a lower rate that fits): frame 3 of 8 is at 3 x frames / 8.
    assert loop["path"] == "video" and loop["frames"] > 8 and loop["cond_index"] == round(3 * loop["frames"] / 8)


# ----------------------------------------------------------------------------- old options, new options


def test_old_options_keep_working_or_say_what_became_of_them(motion_dir, png, tmp_path):
    def animate_cli(*extra):
        return run_cli("animate", png, "-p", "a cat", "-o", tmp_path / "o.webp", "--motion-model", motion_dir,
                       *FAST, *extra)

    for ok in (["--model-motion-only"], ["--room"], ["--no-room"], ["--render", "warp"], ["--decode-input"]):
        assert animate_cli(*ok).exit_code == 0, ok
    r = animate_cli("--frames", "30", "--cond-frame", "5")  # the still at frame 5 of 30
    assert r.exit_code == 0, r.output
    frames = frames_of(tmp_path / "o.webp")[0]
    want = np.asarray(Image.open(png).convert("RGBA"))
    assert len(frames) == 30 and np.array_equal(frames[5][..., 3], want[..., 3])
    assert "--motion-preset" in one_error_line(animate_cli("--prompt-motion"))
    assert "warp" in one_error_line(animate_cli("--render", "fuse"))
    assert "DDIM" in one_error_line(animate_cli("--scheduler", "ddim"))
    assert "expected one of them" in one_error_line(animate_cli("--frames", "30", "--seconds", "2"))
    assert "stickers compile --motion-model" in one_error_line(animate_cli("--engine", "onnx"))  # no compile here
    assert "--jit" in one_error_line(animate_cli("--jit"))
    assert "cond_frame=60: expected 0 to 47" in one_error_line(animate_cli("--cond-frame", "60"))
    video = ["--path", "video", "--model", tmp_path / "no-model"]
    assert "seconds=3" in one_error_line(run_cli("animate", png, "-p", "x", "-o", tmp_path / "v.webp", *video,
                                                 "--seconds", "3"))
    assert "motion_preset 'bounce'" in one_error_line(run_cli("animate", png, "-p", "x", "-o", tmp_path / "v.webp",
                                                              *video, "--motion-preset", "bounce"))
    assert "--motion-model" in one_error_line(run_cli("animate", png, "-p", "x", "-o", tmp_path / "v.webp",
                                                      "--path", "motion", "--model", tmp_path / "m"))


@pytest.mark.parametrize("extra, words", [
    (["--fps", "100", "--seconds", "10"], f"= 1000 frames: expected 2 to {MAX_FRAMES}"),
    (["--seconds", "20"], "seconds=20.0: expected 0.5 to 10"),
    (["--seconds", "0.1"], "seconds=0.1: expected 0.5 to 10"),
    (["--fps", "1", "--seconds", "1"], "= 1 frames: expected at least 2"),
    (["--frames", "999"], f"frames=999: expected 2 to {MAX_FRAMES}"),
    (["--motion-preset", "moonwalk"], "motion_preset 'moonwalk': expected one of bounce"),
])
def test_extreme_loops_are_refused_in_one_line_before_a_model_loads(tmp_path, png, extra, words):
    # The motion model folder does not exist: only a check that runs before loading can answer first.
    line = one_error_line(run_cli("animate", png, "-p", "x", "-o", tmp_path / "o.webp", "--motion-model",
                                  tmp_path / "nothing", *extra))
    assert words in line
    assert not (tmp_path / "o.webp").exists()


def test_a_loop_past_the_memory_budget_is_refused_in_one_line(tmp_path):
    big = tmp_path / "big.png"
    rgba = np.zeros((2048, 2048, 4), np.uint8)
    rgba[256:-256, 256:-256] = (200, 40, 40, 255)  # a sticker on transparency
    Image.fromarray(rgba, "RGBA").save(big)
    line = one_error_line(run_cli("animate", big, "-p", "x", "-o", tmp_path / "o.webp", "--motion-model",
                                  tmp_path / "nothing", "--fps", "30", "--seconds", "3"))
    assert "90 frames of 2048x2048 px" in line and "Mpx" in line
    assert not (tmp_path / "o.webp").exists()


def _broken(folder: Path, how: str) -> Path:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "motion.safetensors"))
    key = sorted(tensors)[0]
    if how == "nan":
        tensors[key] = torch.full_like(tensors[key], float("nan"))
    elif how == "missing":
        tensors.pop(key)
    else:  # wrong shape
        tensors[key] = torch.zeros(3, 3, dtype=tensors[key].dtype)
    save_file(tensors, str(folder / "motion.safetensors"))
    return folder


@pytest.mark.parametrize("how, words", [("nan", "non-finite"), ("missing", "missing from"), ("shape", "has shape"),
                                        ("absent", "does not exist")])
def test_a_broken_motion_model_given_explicitly_is_one_error_line(motion_dir, png, tmp_path, how, words):
    import shutil

    folder = tmp_path / "absent"
    if how != "absent":
        folder = _broken(Path(shutil.copytree(motion_dir, tmp_path / "m")), how)
    line = one_error_line(run_cli("animate", png, "-p", "x", "-o", tmp_path / "o.webp", "--motion-model", folder,
                                  *FAST))
    assert words in line and str(folder) in line
    assert not (tmp_path / "o.webp").exists()


def test_generate_animates_its_still_on_the_motion_path(motion_dir, tmp_path):
    save_model(tiny_model(video=False), tmp_path / "t2i")
    out, still = tmp_path / "g.webp", tmp_path / "still.png"
    r = run_cli("generate", "-p", "a cat", "-o", out, "--still-out", still, "--t2i-model", tmp_path / "t2i",
                "--motion-model", motion_dir, "--seconds", "1", *FAST)
    assert r.exit_code == 0, r.output
    frames, fps = frames_of(out)
    assert len(frames) == 24 and fps == pytest.approx(24.0)
    assert np.array_equal(frames[0][..., 3], np.asarray(Image.open(still).convert("RGBA"))[..., 3])


# ----------------------------------------------------------------------------- the HTTP service


def test_the_http_service_runs_the_motion_path(pipe):
    from animated_stickers.serve.app import create_app
    from animated_stickers.serve.server import ServerThread
    from animated_stickers.serve.settings import ServeSettings

    buf = io.BytesIO()
    sticker(96, 64, seed=1).save(buf, format="PNG")
    files = {"image": ("cat.png", buf.getvalue(), "image/png")}
    with ServerThread(create_app(pipe, ServeSettings(max_batch=2, queue_size=4))) as srv, \
            httpx.Client(base_url=srv.url, timeout=120) as client:
        info = client.get("/v1/info").json()
        assert info["model"]["path"] == "motion" and info["defaults"]["fps"] == 24.0
        r = client.post("/v1/animate", data={"prompt": "a cat", "steps": "2", "seconds": "1"}, files=files)
        assert r.status_code == 200, r.text
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.n_frames == 24
        bad = client.post("/v1/animate", data={"prompt": "a cat", "steps": "2", "prompt_motion": "true"}, files=files)
        assert bad.status_code == 422 and "--motion-preset" in bad.json()["error"]
        bad = client.post("/v1/animate", data={"prompt": "a cat", "seconds": "11"}, files=files)
        assert bad.json() == {"error": "field 'seconds': seconds=11.0: expected 0.5 to 10"}
        preset = client.post("/v1/animate", data={"prompt": "a cat", "steps": "2", "frames": "12", "fps": "12",
                                                  "preset": "slack-emoji"}, files=files)
        assert preset.status_code == 200, preset.text
