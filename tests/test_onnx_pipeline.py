"""The compiled (ONNX) fast path: same frames as the torch pipeline, without importing torch; stale or
other-settings compiles fall back to torch (sampling/onnx_export.py, sampling/onnx_pipeline.py); a missing,
damaged or mismatched graph is never run, and every graph's output is checked (issue 29)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from typer.testing import CliRunner

from animated_stickers.cli import app
from animated_stickers.config import SamplingConfig
from animated_stickers.errors import UserError
from animated_stickers.export.formats import read_frames
from animated_stickers.models.checkpoint import save_model
from animated_stickers.models.decoder import ReferenceDecoder
from animated_stickers.sampling.onnx_export import OPSET, compile_model
from animated_stickers.sampling.onnx_pipeline import OnnxPipeline, StaleCompile, file_digest, manifest_digest
from animated_stickers.sampling.params import with_overrides
from animated_stickers.sampling.pipeline import AnimatePipeline
from animated_stickers.sampling.preprocess import prepare_sticker
from animated_stickers.sampling.resultcheck import BrokenOutput
from sampling_support import one_thread, sticker, tiny_model  # noqa: F401 (fixture)

SETTINGS = SamplingConfig(scheduler="dpm", steps=4, image_guidance=1.0, text_guidance=1.0, guided_steps=0)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A random tiny model with a (non-trivial) reference decoder, saved and compiled."""
    torch.set_num_threads(1)
    model = tiny_model(seed=3)
    model.decoder = ReferenceDecoder()
    with torch.no_grad():  # the fresh fusion net is the identity: make its gate do something
        model.decoder.net[-1].weight.normal_(0, 0.05)
        model.decoder.net[-1].bias.fill_(0.5)
    model.sampling = SETTINGS
    folder = tmp_path_factory.mktemp("compiled") / "model"
    save_model(model, folder)
    compile_model(folder, log=lambda _: None)
    return folder


def _frames(seq) -> np.ndarray:
    return np.stack([np.asarray(f, np.float32) / 255 for f in seq])  # (T, H, W, 4)


@pytest.mark.parametrize("render", ["warp", "fuse"])
def test_the_onnx_pipeline_makes_the_torch_pipelines_frames(compiled, render):
    image = sticker(300, 200)
    s = prepare_sticker(image, "ellipse", 64)
    for prompt in ("bouncing up and down", "a happy face"):  # with and without prompt motion
        params = dataclasses.replace(SETTINGS, seed=7, render=render)
        want = _frames(AnimatePipeline.from_dir(compiled).animate_stickers([s], [prompt], params)[0])
        fast = OnnxPipeline.open(compiled, threads=1)
        got = _frames(fast.animate_stickers([s], [prompt], params)[0])
        assert got.shape == want.shape == (8, 200, 300, 4)
        assert np.abs(got - want).mean() < 1e-3, prompt
        # DIS flow sees uint8 frames: a 1e-5 difference can flip a rounding and move a few warped pixels
        # (the fuse render gates most of that away; the warp render shows it, on this random model only).
        q = 0.999 if render == "fuse" else 0.99
        assert np.quantile(np.abs(got - want), q) < 0.02, prompt
        other = _frames(fast.animate_stickers([s], [prompt], dataclasses.replace(params, seed=8))[0])
        assert np.abs(other - got).mean() > 10 * np.abs(got - want).mean()  # the seed matters, as in torch


def test_a_failed_compile_keeps_the_old_graphs_and_leaves_nothing_behind(compiled, monkeypatch):
    import animated_stickers.sampling.onnx_export as onnx_export

    before = (compiled / "onnx" / "manifest.json").read_text()
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # every parity check fails
    with pytest.raises(UserError, match="differs from torch"):
        compile_model(compiled, log=lambda _: None)
    assert (compiled / "onnx" / "manifest.json").read_text() == before
    assert not (compiled / ".onnx.tmp").exists()


def test_only_the_compiled_settings_and_current_weights_are_served(compiled, tmp_path):
    fast = OnnxPipeline.open(compiled)
    assert fast.supports(SETTINGS)
    assert fast.supports(with_overrides(SETTINGS, seed=5, prompt_motion=False, paste_input=True, render="fuse",
                                        harmonics=1))  # applied after the graphs: any value
    for changed in ({"steps": 5}, {"scheduler": "ddim"}, {"num_frames": 16}, {"cond_frame": 0},
                    {"image_guidance": 2.0}, {"dtype": "bfloat16"}):
        assert not fast.supports(with_overrides(SETTINGS, **changed)), changed
    with pytest.raises(UserError, match="compiled for"):
        fast.animate_stickers([prepare_sticker(sticker(), "s", 64)], ["x"], with_overrides(SETTINGS, steps=5))
    # Other weights in the folder: the compile is stale and ignored.
    stale = tmp_path / "model"
    stale.mkdir()
    for p in compiled.iterdir():
        (stale / p.name).symlink_to(p)
    (stale / "unet.safetensors").unlink()
    save_model(tiny_model(seed=4), tmp_path / "other")
    (stale / "unet.safetensors").symlink_to(tmp_path / "other" / "unet.safetensors")
    assert OnnxPipeline.open(stale) is None
    assert OnnxPipeline.open(tmp_path / "other") is None  # never compiled
    png = tmp_path / "s.png"
    sticker().save(png)
    r = CliRunner().invoke(app, ["animate", str(png), "-p", "hi", "-o", str(tmp_path / "a.webp"), "--model",
                                 str(stale)])
    assert r.exit_code == 0, r.output
    assert "compiled from other weights" in r.output  # said, then the torch engine animates


def test_bench_measures_the_compiled_engine(compiled):
    from animated_stickers.sampling.bench import run_bench

    result = run_bench(model=compiled, only=["onnx", "distilled-onnx"], batch=2, threads=1, ablate=False,
                       decoder=False)
    onnx, distilled = result["configs"]
    assert onnx["name"] == "onnx" and onnx["nfe"] == SETTINGS.steps
    assert onnx["seconds_per_sticker"] > 0 and onnx["floor_ratio"] >= 1.0
    assert set(onnx["floor_parts"]) == {"unet_s", "vae_decode_s", "vae_encode_s", "text_encode_s"}
    assert "skipped" in distilled  # no --distilled folder given


def test_cli_animate_runs_the_compile_without_importing_torch(compiled, tmp_path):
    png, out = tmp_path / "s.png", tmp_path / "out" / "s.webp"
    sticker().save(png)
    code = ("import sys; sys.argv = ['stickers', 'animate', sys.argv[1], '-p', 'spinning around', '-o', sys.argv[2],"
            " '--model', sys.argv[3], '--engine', 'onnx', '--threads', '1']\n"
            "from animated_stickers.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(json.dumps(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", "import json\n" + code, str(png), str(out), str(compiled)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    assert out.is_file() and out.stat().st_size > 0


def test_cli_engine_onnx_says_what_to_compile(compiled, tmp_path):
    png = tmp_path / "s.png"
    sticker().save(png)
    r = CliRunner().invoke(app, ["animate", str(png), "-p", "hi", "-o", str(tmp_path / "a.webp"), "--model",
                                 str(compiled), "--engine", "onnx", "--steps", "5"])
    assert r.exit_code != 0
    assert "stickers compile" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(app, ["animate", str(png), "-p", "hi", "-o", str(tmp_path / "b.webp"), "--model",
                                 str(compiled), "--steps", "5"])  # auto: the torch engine takes other settings
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b.webp").is_file()


# ----------------------------------------------------------------------------- damaged compiles (issue 29)

def _damaged(compiled, tmp_path, damage) -> Path:
    """A copy of the compiled model folder with `damage(onnx_folder)` applied."""
    folder = tmp_path / "model"
    shutil.copytree(compiled, folder)
    damage(folder / "onnx")
    return folder


def _set_initializers(path: Path, fn) -> None:
    """Rewrite every float initializer of an ONNX graph with fn(array)."""
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(fn(numpy_helper.to_array(init)).astype(np.float32), init.name))
    onnx.save(model, str(path))


def _redigest(folder: Path) -> None:
    """What a writer who also updates manifest.json leaves: digests that agree with the damaged files."""
    path = folder / "onnx" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"] = {n: file_digest(folder / "onnx" / n) for n in manifest["files"]}
    manifest["manifest_digest"] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest))


def _half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {  # name -> (damage to onnx/, the file the message names)
    "truncated graph": (lambda d: _half(d / "unet.onnx"), "unet.onnx"),
    "emptied graph": (lambda d: (d / "text.onnx").write_bytes(b""), "text.onnx"),
    "swapped graph": (lambda d: shutil.copy(d / "encode.onnx", d / "decode.onnx"), "decode.onnx"),
    "NaN initializer": (lambda d: _set_initializers(d / "decode.onnx", lambda a: np.full_like(a, np.nan)),
                        "decode.onnx"),
    "missing graph": (lambda d: (d / "fuse.onnx").unlink(), "fuse.onnx"),
    "missing tokenizer": (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json"),
}


@pytest.fixture(scope="module")
def intact_torch_frames(compiled, tmp_path_factory):
    """What the intact model draws with the torch engine (the fallback must draw exactly this)."""
    tmp = tmp_path_factory.mktemp("intact")
    sticker().save(tmp / "s.png")
    r = CliRunner().invoke(app, ["animate", str(tmp / "s.png"), "-p", "bouncing", "-o", str(tmp / "t.webp"),
                                 "--model", str(compiled), "--engine", "torch", "--threads", "1"])
    assert r.exit_code == 0, r.output
    return _frames(read_frames(tmp / "t.webp")[0])


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_graph_is_never_run(compiled, intact_torch_frames, tmp_path, name):
    damage, file = DAMAGES[name]
    folder = _damaged(compiled, tmp_path, damage)
    with pytest.raises(StaleCompile, match=file):
        OnnxPipeline.load(folder)
    png = tmp_path / "s.png"
    sticker().save(png)
    args = ["animate", str(png), "-p", "bouncing", "--model", str(folder), "--threads", "1"]
    r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "onnx.webp"), "--engine", "onnx"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    [line] = [x for x in r.output.splitlines() if x.strip()]
    assert line.startswith("error: --engine onnx:") and file in line and "stickers compile" in line
    assert not (tmp_path / "onnx.webp").exists()
    r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "auto.webp")])  # auto: the torch engine, said once
    assert r.exit_code == 0, r.output
    notes = [x for x in r.output.splitlines() if x.startswith("note:")]
    assert len(notes) == 1 and file in notes[0] and "torch engine" in notes[0], r.output
    assert np.array_equal(_frames(read_frames(tmp_path / "auto.webp")[0]), intact_torch_frames)


def test_old_and_edited_manifests_are_stale(compiled, tmp_path):
    folder = _damaged(compiled, tmp_path, lambda d: None)
    path = folder / "onnx" / "manifest.json"
    good = json.loads(path.read_text())
    old = {k: v for k, v in good.items() if k not in ("files", "manifest_digest")} | {"format": 1}
    path.write_text(json.dumps(old))  # what the previous version wrote: no digests
    with pytest.raises(StaleCompile, match="another compile format"):
        OnnxPipeline.load(folder)
    assert OnnxPipeline.open(folder) is None
    path.write_text(json.dumps({**good, "latent": [8, 8, 16, 16]}))  # disagrees with its graphs
    with pytest.raises(StaleCompile, match="changed after the compile"):
        OnnxPipeline.load(folder)
    _redigest(folder)  # ... even with its own digest updated, the UNet's input shape says no
    with pytest.raises(StaleCompile, match=r"unet.onnx' takes x of shape .* manifest.json expects"):
        OnnxPipeline.load(folder)
    path.write_text("{half")
    with pytest.raises(StaleCompile, match="manifest.json' is unreadable"):
        OnnxPipeline.load(folder)


def test_outputs_are_checked_even_when_the_digests_agree(compiled, tmp_path):
    """Digests catch damage, not a writer who updates them: NaN and blank outputs still never reach a file."""
    s = prepare_sticker(sticker(300, 200), "ellipse", 64)
    params = dataclasses.replace(SETTINGS, seed=7)
    nan = _damaged(compiled, tmp_path / "nan", lambda d: _set_initializers(d / "decode.onnx",
                                                                         lambda a: np.full_like(a, np.nan)))
    _redigest(nan)
    with pytest.raises(BrokenOutput, match=r"decode.onnx' gave NaN or infinite values.*stickers compile"):
        OnnxPipeline.open(nan, threads=1).animate_stickers([s], ["wave"], params)
    blank = _damaged(compiled, tmp_path / "blank", lambda d: onnx.save(_zeros_graph(), str(d / "fuse.onnx")))
    _redigest(blank)
    fast = OnnxPipeline.open(blank, threads=1)
    assert fast is not None
    with pytest.raises(BrokenOutput, match="drew 'ellipse' fully transparent"):
        fast.animate_stickers([s], ["wave"], dataclasses.replace(params, render="fuse"))
    assert len(fast.animate_stickers([s], ["wave"], params)[0]) == 8  # the warp render never runs fuse


def _zeros_graph() -> onnx.ModelProto:
    """A stand-in fusion net: takes low, warped and flow, returns warped * 0 (finite, fully transparent)."""
    from onnx import TensorProto, helper

    dims = ["T", 4, "S", "S"]
    inputs = [helper.make_tensor_value_info("low", TensorProto.FLOAT, ["T", 4, "h", "h"]),
              helper.make_tensor_value_info("warped", TensorProto.FLOAT, dims),
              helper.make_tensor_value_info("flow", TensorProto.FLOAT, ["T", 2, "h", "h"])]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph([helper.make_node("Mul", ["warped", "zero"], ["out"])], "zeros", inputs,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, dims)], [zero])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def test_a_blank_result_from_the_torch_engine_is_an_error():
    model = tiny_model()
    with torch.no_grad():  # the VAE's last conv draws nothing: every channel clamps to 0
        model.vae.model.decoder.conv_out.weight.zero_()
        model.vae.model.decoder.conv_out.bias.fill_(-100.0)
    plain = dataclasses.replace(SETTINGS, render="fuse")  # no reference decoder: the VAE's frames as they are
    with pytest.raises(BrokenOutput, match="drew 'sticker 1' fully transparent"):
        AnimatePipeline(model).animate([sticker(64, 64)], ["wave"], plain)
    assert len(AnimatePipeline(model).animate([sticker(64, 64)], ["wave"], SETTINGS)[0]) == 8  # warp: the sticker
