"""The motion model's engines (sampling/motion_onnx.py, motion_compile.py, issue 28): the numpy sampler is
diffusion/motion.sample_spectral's, the compiled graphs give the torch engine's volumes without importing
torch, a damaged or stale compile is never run, and a broken motion model folder is one `error:` line."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import typer
from PIL import Image

from animated_stickers.errors import UserError, one_line_errors
from animated_stickers.models.motion_net import (
    SUPPORT_DILATE,
    MotionModelError,
    MotionNet,
    motion_config,
    save_motion_model,
)
from animated_stickers.sampling.motion_compile import compile_motion_model
from animated_stickers.sampling.motion_model import motion_volume
from animated_stickers.sampling.motion_onnx import (
    OnnxMotionEngine,
    StaleCompile,
    TorchMotionEngine,
    load_motion_engine,
    still_input,
    support_mask,
)

TINY = {"block_out_channels": [16, 32], "attention_blocks": [False, True], "head_dim": 8, "norm_num_groups": 4,
        "size": 16, "still_size": 32, "patch": 2, "text": {"kind": "minilm", "max_length": 8}}
DUAL = (1.5, 3.0)


def _still(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A straight RGBA (h, w, 4) uint8 ellipse with noisy colour on transparency."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(((yy - h / 2) / (h / 2.5)) ** 2 + ((xx - w / 2) / (w / 3)) ** 2 <= 1, 255, 0)
    return rgba


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A random tiny motion model (made to move: random weights perturbed), saved and compiled."""
    torch.manual_seed(0)
    net = MotionNet(motion_config(TINY)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    folder = save_motion_model(net, tmp_path_factory.mktemp("motion") / "m")
    compile_motion_model(folder, log=lambda _: None)
    return folder


def _copy(compiled, tmp_path):
    return shutil.copytree(compiled, tmp_path / "m")


def test_the_numpy_still_and_support_are_motionnets():
    net = MotionNet(motion_config(TINY))
    rng = np.random.default_rng(1)
    still = rng.random((3, 4, 32, 32), dtype=np.float32)
    still[:, 3] = (rng.random((3, 32, 32)) < 0.1) * rng.random((3, 32, 32))  # sparse alpha: edges everywhere
    still[0, 3, :, :16] = 0  # and a transparent half
    want = net.support(torch.from_numpy(still)).numpy()
    got = support_mask(still, 16, 4)
    assert got.shape == want.shape == (3, 1, 16, 16) and 0 < want.mean() < 1
    assert np.abs(got - want).max() <= 1e-6
    np.testing.assert_allclose(still_input(still, 16), net.still_input(torch.from_numpy(still)).numpy(), atol=1e-6)


@pytest.mark.parametrize(("steps", "guidance"), [(4, (1.0, 1.0)), (3, DUAL)])
def test_the_numpy_sampler_is_sample_spectrals(compiled, steps, guidance):
    """Same x_T: the shared numpy DDIM + guidance + support is diffusion/motion.sample_spectral (diffusers'
    DDIMScheduler, trailing; 3 steps do not divide 1000)."""
    from animated_stickers.diffusion.motion import sample_spectral
    from animated_stickers.motion.spectral import alpha_on_grid, sampled_field
    from animated_stickers.sampling.motion_onnx import square_stills

    engine = TorchMotionEngine.load(compiled)
    still = _still(40, 30)
    cfg, gen = engine.net.cfg, torch.Generator().manual_seed(5)
    noise = torch.randn((1, 16, 16, 16), generator=torch.Generator().manual_seed(5)).numpy()
    text, null = (engine.text([p])[0].float() for p in ("waving hello", ""))
    square = torch.from_numpy(square_stills([still], 32))
    z = sample_spectral(engine.net, square, text, null, steps, *guidance, gen)
    alpha = alpha_on_grid(square[0, 3].numpy(), cfg.size)
    # the engines cut the field to where the sticker shows, smooth it and keep it from folding the sticker
    want = sampled_field(z[0].numpy(), alpha, cfg.scales, cfg.gamma, SUPPORT_DILATE)
    got = engine.volumes([still], ["waving hello"], [5], steps, *guidance, noise=noise)[0]
    assert got.shape == want.shape == (16, 16, 16) and np.abs(want).max() > 1e-3
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    # motion_volume (the eval's and the tests' door to the model) is the torch engine, seed -> x_T included.
    np.testing.assert_array_equal(motion_volume(engine.net, engine.text, still, "waving hello", 5, steps, *guidance),
                                  engine.volumes([still], ["waving hello"], [5], steps, *guidance)[0])


@pytest.mark.parametrize("guidance", [(1.0, 1.0), DUAL])
def test_the_onnx_engine_gives_the_torch_engines_volumes(compiled, guidance):
    onnx, torch_engine = load_motion_engine(compiled, "onnx", threads=1), load_motion_engine(compiled, "torch")
    assert isinstance(onnx, OnnxMotionEngine) and isinstance(torch_engine, TorchMotionEngine)
    assert isinstance(load_motion_engine(compiled), OnnxMotionEngine)  # auto: the current compile
    stills, prompts = [_still(40, 30), _still(24, 24, seed=1)], ["waving hello", "a rabbit tilting its head"]
    got = onnx.volumes(stills, prompts, [7, 8], 4, *guidance)
    want = torch_engine.volumes(stills, prompts, [7, 8], 4, *guidance)
    for g, w in zip(got, want):
        assert np.abs(w).max() > 1e-3
        assert np.abs(g - w).max() <= 1e-4 * np.abs(w).max()
    assert onnx.stats["nfe"] == 4 * (1 if guidance == (1.0, 1.0) else 3)
    alone = onnx.volumes(stills[1:], prompts[1:], [8], 4, *guidance)[0]
    assert np.abs(alone - got[1]).max() <= 1e-5 * np.abs(got[1]).max()  # a sticker's volume ignores the batch
    other = onnx.volumes(stills[1:], prompts[1:], [9], 4, *guidance)[0]
    assert np.abs(other - got[1]).mean() > 0.1 * np.abs(got[1]).mean()  # the seed matters


def test_a_seed_moves_a_sticker_the_same_on_both_engines(compiled):
    """The motion path (MotionPipeline) on the compile and on torch: one seed -> noise rule, the same frames
    up to the graphs' float differences."""
    from animated_stickers.sampling.motion_pipeline import MotionPipeline

    onnx, torch_pipe = MotionPipeline.from_dir(compiled, "onnx", 1), MotionPipeline.from_dir(compiled, "torch", 1)
    assert onnx.engine.name == "onnx" and torch_pipe.engine.name == "torch"
    assert onnx.describe() == torch_pipe.describe() and onnx.resolution == 32
    images = [Image.fromarray(_still(40, 30)), Image.fromarray(_still(24, 24, seed=1))]
    params = dataclasses.replace(onnx.sampling, steps=3, num_frames=12, seed=4)
    a, b = (p.animate(images, ["waving hello", "a rabbit"], params) for p in (onnx, torch_pipe))
    for x, y in zip(a, b):
        x, y = np.stack([np.asarray(f) for f in x]).astype(int), np.stack([np.asarray(f) for f in y]).astype(int)
        assert np.array_equal(x[0], y[0]) and np.abs(x - y).max() <= 1  # frame 0: the still on both
        assert np.abs(x - x[:1]).max() > 0  # and it moves


def test_cli_animate_on_a_compiled_motion_model_never_imports_torch(compiled, tmp_path):
    """`stickers animate --motion-model DIR --engine onnx` end to end in a fresh interpreter."""
    png, out = tmp_path / "s.png", tmp_path / "out" / "s.webp"
    Image.fromarray(_still(40, 30)).save(png)
    code = ("import json, sys; sys.argv = ['stickers', 'animate', sys.argv[1], '-p', 'waving hello', '-o', "
            "sys.argv[2], '--motion-model', sys.argv[3], '--engine', 'onnx', '--threads', '1', '--steps', '2']\n"
            "from animated_stickers.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(json.dumps(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, str(png), str(out), str(compiled)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    with Image.open(out) as im:
        assert im.n_frames == 48 and im.size == (30, 40)


def test_stickers_compile_takes_a_motion_model_and_the_bundled_one(compiled, tmp_path, monkeypatch):
    from animated_stickers.sampling import paths
    from sampling_support import one_error_line, run_cli

    folder = _copy(compiled, tmp_path)
    shutil.rmtree(folder / "onnx")
    r = run_cli("compile", "--motion-model", folder)
    assert r.exit_code == 0, r.output
    assert isinstance(load_motion_engine(folder, "onnx"), OnnxMotionEngine)
    assert "--steps sets the video model's compile" in one_error_line(run_cli("compile", "--motion-model", folder,
                                                                              "--steps", "4"))
    # No folder given: the bundled video model (current here, or compiled) and the bundled motion model.
    monkeypatch.setattr(paths, "DEFAULT_MOTION_DIR", folder)
    r = run_cli("compile")
    assert r.exit_code == 0, r.output
    assert f"{folder / 'onnx'} is current" in r.output


def test_stickers_bench_takes_a_motion_model(compiled, monkeypatch):
    from animated_stickers.sampling import bench
    from sampling_support import one_error_line, run_cli

    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        return {"configs": []}

    monkeypatch.setattr(bench, "run_bench", fake)
    r = run_cli("bench", "--motion-model", compiled, "--configs", "naive,motion", "--json")
    assert r.exit_code == 0, r.output
    assert seen["motion_model"] == compiled and seen["only"] == ["naive", "motion"]
    assert "--motion-model DIR or --random" in one_error_line(run_cli("bench", "--random", "--motion-model",
                                                                      compiled))


def test_the_onnx_motion_path_never_imports_torch(compiled):
    """The bench's cold process: import + load + sample + render + encode of the README example, 48 frames."""
    from animated_stickers.sampling.motion_bench import cold_start

    cold = cold_start(compiled, threads=1)
    assert "skipped" not in cold, cold
    assert cold["torch_imported"] is False and cold["side"] == 256 and cold["cold_s"] > 0


@pytest.mark.parametrize("damage", ["tampered", "missing", "stale weights"])
def test_a_damaged_or_stale_compile_falls_back_to_torch_or_is_one_error(compiled, tmp_path, capsys, damage):
    folder = _copy(compiled, tmp_path)
    if damage == "tampered":
        with (folder / "onnx" / "motion.onnx").open("ab") as f:
            f.write(b"\0")
        says = "does not match its digest"
    elif damage == "missing":
        (folder / "onnx" / "text.onnx").unlink()
        says = "is missing"
    else:  # weights changed after the compile (still a valid model)
        net = TorchMotionEngine.load(folder).net
        with torch.no_grad():
            next(iter(net.parameters())).mul_(0.5)
        save_motion_model(net, folder)
        says = "compiled from other weights"
    notes = []
    engine = load_motion_engine(folder, "auto", notice=notes.append)
    assert isinstance(engine, TorchMotionEngine)
    assert len(notes) == 1 and notes[0].startswith("note: ") and says in notes[0] and "torch engine" in notes[0]
    with pytest.raises(StaleCompile, match=says):
        load_motion_engine(folder, "onnx")
    with pytest.raises(typer.Exit):
        one_line_errors(load_motion_engine)(folder, "onnx")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --engine onnx") and "stickers compile --motion-model" in err[0]
    compile_motion_model(folder, log=lambda _: None)  # a compile replaces it
    assert isinstance(load_motion_engine(folder, "onnx"), OnnxMotionEngine)


def test_a_folder_without_a_compile_is_torch_under_auto_and_an_error_under_onnx(compiled, tmp_path):
    folder = _copy(compiled, tmp_path)
    shutil.rmtree(folder / "onnx")
    notes = []
    assert isinstance(load_motion_engine(folder, notice=notes.append), TorchMotionEngine) and notes == []
    with pytest.raises(UserError, match="has no compile: run `stickers compile"):
        load_motion_engine(folder, "onnx")
    with pytest.raises(UserError, match="--engine 'gpu'"):
        load_motion_engine(folder, "gpu")
    logs = []
    compile_motion_model(folder, log=logs.append)
    compile_motion_model(folder, log=logs.append)  # current: kept
    assert "is current" in logs[-1]


@pytest.mark.parametrize("broken", ["shape", "missing", "non-finite"])
def test_a_broken_motion_model_is_one_error_line(compiled, tmp_path, capsys, broken):
    """Wrong shape, missing or NaN weights: refused by compile (the CLI's path) and by every engine choice,
    the compile made before the damage included (its weights digest no longer matches)."""
    from safetensors.torch import load_file, save_file

    folder = _copy(compiled, tmp_path)
    good = load_file(str(folder / "motion.safetensors"))
    name = next(k for k in good if k.endswith("conv_in.weight"))
    tensors = {"shape": {**good, name: good[name][:1]}, "missing": {k: v for k, v in good.items() if k != name},
               "non-finite": {**good, name: good[name] * float("nan")}}[broken]
    save_file(tensors, str(folder / "motion.safetensors"))
    with pytest.raises(typer.Exit) as exit_:
        one_line_errors(compile_motion_model)(folder, log=lambda _: None, force=True)
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: motion model") and broken in err[0]
    for engine in ("torch", "auto"):
        with pytest.raises(MotionModelError, match=broken):
            load_motion_engine(folder, engine, notice=lambda _: None)
    with pytest.raises(StaleCompile, match="other weights"):
        load_motion_engine(folder, "onnx")
    assert (folder / "onnx" / "manifest.json").is_file()  # the refused compile left the old one alone


def test_the_engines_take_stills_of_any_size_and_aspect(compiled):
    engine = load_motion_engine(compiled, "onnx", threads=1)
    tall, wide = _still(60, 12), _still(20, 50, seed=2)
    a, b = engine.volumes([tall, wide], ["x", "x"], [0, 0], 2)
    assert a.shape == b.shape == (16, 16, 16) and np.isfinite(a).all() and np.isfinite(b).all()
    # The cut follows each still: the narrow one's field lies on its own columns, hardly at the square's sides
    # (on this 16 px grid the sticker is 3 px wide; its reach, the loop's moves and the blur leave a little).
    columns = np.abs(a).mean(axis=(0, 1))  # (16,)
    assert columns[6:10].mean() > 5 * columns[[0, 1, 14, 15]].mean() and np.abs(a).sum() > 0


def test_the_numpy_sampler_is_sample_spectrals_for_an_x0_model(tmp_path):
    """The recipe's x0 ("sample") prediction, zero-terminal SNR: numpy DDIM = diffusers' DDIMScheduler."""
    from animated_stickers.diffusion.motion import sample_spectral
    from animated_stickers.motion.spectral import alpha_on_grid, sampled_field
    from animated_stickers.sampling.motion_onnx import square_stills

    torch.manual_seed(1)
    net = MotionNet(motion_config({**TINY, "prediction_type": "sample"})).eval()
    engine = TorchMotionEngine.load(save_motion_model(net, tmp_path / "x0"))
    assert engine.spec.alphas_cumprod[-1] < 1e-6  # zero terminal SNR kept for x0
    still, noise = _still(32, 32), torch.randn((1, 16, 16, 16), generator=torch.Generator().manual_seed(2)).numpy()
    text, null = (engine.text([p])[0].float() for p in ("spinning", ""))
    square = torch.from_numpy(square_stills([still], 32))
    z = sample_spectral(engine.net, square, text, null, 4, *DUAL, torch.Generator().manual_seed(2))
    cfg = engine.net.cfg
    want = sampled_field(z[0].numpy(), alpha_on_grid(square[0, 3].numpy(), cfg.size), cfg.scales, cfg.gamma,
                         SUPPORT_DILATE)
    got = engine.volumes([still], ["spinning"], [2], 4, *DUAL, noise=noise)[0]
    assert np.abs(want).max() > 1e-4
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
