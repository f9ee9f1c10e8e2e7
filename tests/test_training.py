"""Training: recipes, a 2-step smoke run of every stage, CFG dropout, freezing, 2-process DDP + resume."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from animated_stickers.config import ConfigError, model_config
from animated_stickers.data.loader import LoaderConfig
from animated_stickers.models.checkpoint import StickerModel, load_model
from animated_stickers.training.banks import LatentBank
from animated_stickers.training.recipes import get_recipe
from animated_stickers.training.stages import build_stage, run_recipe, snapshot_stage
from animated_stickers.training.tasks import DiffusionTask

sys.path.insert(0, str(Path(__file__).parent))
from training_fixtures import make_prepared  # noqa: E402

HERE = Path(__file__).parent


def test_paper_example_recipe_is_expressible():
    r = get_recipe("paper-example")
    assert [(s.resolution, s.freeze_spatial, s.fps, s.prediction_type) for s in r.stages] == [
        (256, True, "4", "epsilon"), (512, True, "4", "epsilon"), (512, False, "8", "v_prediction")]


def test_recipe_from_yaml_and_errors(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("name: mine\nstages:\n  - {name: a, kind: video, steps: 3, fps: 4}\n")
    r = get_recipe(str(f), ["batch_size=2"])
    assert r.stages[0].fps == "4" and r.stages[0].batch_size == 2
    f.write_text("name: bad\nstages:\n  - {name: a, kind: audio, steps: 3}\n")
    with pytest.raises(ConfigError, match="kind 'audio'"):
        get_recipe(str(f))
    with pytest.raises(ConfigError, match="unknown recipe"):
        get_recipe("nope")


def test_smoke_recipe_trains_every_stage(tmp_path):
    root = [make_prepared(tmp_path / "data")]
    recipe = get_recipe("smoke")
    done = run_recipe(recipe, tmp_path / "run", root)
    assert [d.parent.name for d in done] == ["vae", "t2i", "video", "decoder"]
    vae, t2i, video, decoded = (load_model(d) for d in done)
    assert decoded.decoder is not None and video.decoder is None  # the decoder stage adds the fusion net
    for key, value in video.unet.state_dict().items():  # ... and leaves the video model as it was
        assert torch.equal(decoded.unet.state_dict()[key], value), key
    assert vae.cfg.vae.scaling_factor != 1.0  # fitted to the data after the VAE stage
    assert t2i.stage == "t2i" and video.stage == "video"
    assert video.unet.in_channels == 17  # IP2P: noisy latent + sticker latent + conditioning-frame mask
    for stage in ("vae", "t2i", "video", "decoder"):
        rows = [json.loads(x) for x in (tmp_path / "run" / stage / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["step"] == 2 and torch.isfinite(torch.tensor(rows[-1]["loss"]))
    # The video stage trains only temporal layers + conv_in (freeze_spatial), so spatial weights match t2i.
    a, b = t2i.unet.state_dict(), video.unet.state_dict()
    assert torch.equal(a["unet.down_blocks.0.resnets.0.conv1.weight"], b["unet.down_blocks.0.resnets.0.conv1.weight"])
    # Rerunning a finished recipe trains nothing and returns the same folders.
    assert run_recipe(recipe, tmp_path / "run", root) == done
    # One latent cache per --data folder: a stage mixing its sources differently encodes nothing new.
    caches = sorted((tmp_path / "run" / "banks").glob("latents-*.safetensors"))
    other = dataclasses.replace(recipe.stages[2], data={"procedural": 1.0})
    _, task, _ = build_stage(recipe, other, tmp_path / "run", root)
    assert sorted((tmp_path / "run" / "banks").glob("latents-*.safetensors")) == caches
    assert {task.bank.metas[i]["source"] for g in task.groups for i in g} == {"procedural"}
    # A snapshot of the last checkpoint (EMA weights) is the finished stage's model.
    snap, step = snapshot_stage(recipe, recipe.stages[2], tmp_path / "run", root, tmp_path / "snap")
    assert step == 2
    snapped = load_model(snap).unet.state_dict()
    for key, value in video.unet.state_dict().items():
        assert torch.equal(snapped[key], value), key


def _bank(n: int = 4, frames: int = 24, source: str = "fluent-anim") -> LatentBank:
    lat = torch.randn(n * frames, 8, 4, 4).half()
    metas = [{"key": f"v{i}", "source": source, "caption": f"caption {i}", "n_frames": frames, "fps": 12.0,
              "loop_period": frames, "start": i * frames, "length": frames} for i in range(n)]
    return LatentBank(lat, metas)


def _task(model, stage, bank=None):
    loader = LoaderConfig(data="", cond_mode=stage.cond_frame, p_drop_text=stage.drop_text,
                          p_drop_image=stage.drop_image, p_drop_both=stage.drop_both)
    return DiffusionTask(model, bank or _bank(source=next(iter(stage.data))), stage, loader)


def test_cfg_dropout_rates_and_null_conditions():
    cfg = model_config("tiny", overrides=["resolution=32", "vae.block_out_channels=[8,16,16]",
                                          "vae.norm_num_groups=4", "unet.block_out_channels=[16,32]",
                                          "unet.attention_blocks=[false,true]", "unet.head_dim=8",
                                          "unet.norm_num_groups=4", "unet.cross_attention_dim=16"])
    model = StickerModel.create(cfg)
    stage = get_recipe("tiny").stages[3]
    stage.batch_size = 4000
    task = _task(model, stage)
    batch = task.make_batch(torch.Generator().manual_seed(0))
    both = (batch["drop_text"] & batch["drop_image"]).float().mean().item()
    text_only = (batch["drop_text"] & ~batch["drop_image"]).float().mean().item()
    image_only = (batch["drop_image"] & ~batch["drop_text"]).float().mean().item()
    for rate, want in [(both, stage.drop_both), (text_only, stage.drop_text), (image_only, stage.drop_image)]:
        assert abs(rate - want) < 0.015
    assert batch["z0"].shape == (4000, 8, 8, 4, 4)
    # Any-index conditioning: the conditioning latent is the clip's frame at its (random) index.
    idx = batch["cond_index"]
    assert torch.equal(batch["cond"], batch["z0"][torch.arange(4000), :, idx])
    assert set(idx.tolist()) == set(range(8))


def test_freeze_spatial_trains_only_temporal_layers_and_conv_in():
    cfg = model_config("tiny", overrides=["resolution=32", "vae.block_out_channels=[8,16,16]",
                                          "vae.norm_num_groups=4", "unet.block_out_channels=[16,32]",
                                          "unet.attention_blocks=[false,true]", "unet.head_dim=8",
                                          "unet.norm_num_groups=4", "unet.cross_attention_dim=16"])
    model = StickerModel.create(cfg)
    stage = get_recipe("tiny").stages[2]
    assert stage.freeze_spatial
    task = _task(model, stage)
    names = [n for n, p in model.unet.named_parameters() if p.requires_grad]
    assert names and all(".temporal." in n or n.startswith("unet.conv_in") for n in names)
    assert len(task.trainable_parameters()) == len(names)


@pytest.mark.slow
def test_two_process_ddp_keeps_ranks_identical_and_resumes_exactly(tmp_path):
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "mp_train_script.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["straight"] == r1["straight"] and r0["straight_sum"] == r1["straight_sum"]
    assert r0["steps"] == [2, 4]
    assert r0["resumed_max_diff"] == 0.0 and r1["resumed_max_diff"] == 0.0


def test_residual_target_denoises_the_clip_minus_its_conditioning_frame():
    """A static clip in residual mode is the zero clip in frames mode (same noise, same sticker input)."""
    over = ["resolution=32", "vae.block_out_channels=[8,16,16]", "vae.norm_num_groups=4",
            "unet.block_out_channels=[16,32]", "unet.attention_blocks=[false,true]", "unet.head_dim=8",
            "unet.norm_num_groups=4", "unet.cross_attention_dim=16"]
    stage = get_recipe("tiny").stages[3]
    losses = {}
    for target in ("frames", "residual"):
        model = StickerModel.create(model_config("tiny", overrides=over + [f"video_target={target}"]))
        torch.manual_seed(0)
        model.unet.inflate()
        for p in model.unet.parameters():
            p.data.normal_(0, 0.05, generator=torch.Generator().manual_seed(p.numel()))
        task = _task(model, stage)
        batch = task.make_batch(torch.Generator().manual_seed(0))
        still = batch["cond"][:, :, None].expand_as(batch["z0"]).clone()
        batch["z0"] = still if target == "residual" else torch.zeros_like(still)
        losses[target] = task(batch)[0].item()
    assert losses["frames"] == pytest.approx(losses["residual"], rel=1e-5)
    with pytest.raises(ConfigError, match="target 'diff'"):
        get_recipe("tiny", ["target=diff"])


def test_model_card_sums_resumed_segments_times_threads(tmp_path):
    from animated_stickers.config import save_json, to_dict
    from animated_stickers.training.card import write_model_card

    recipe = get_recipe("tiny")
    run = tmp_path / "run"
    run.mkdir()
    save_json(recipe, run / "recipe.json")
    # fluent-finetune: 1800 s on 1 thread, then resumed (elapsed restarts) for 900 s on 2 threads.
    rows = [{"step": 10, "loss": 0.3, "elapsed_s": 900.0}, {"step": 20, "loss": 0.2, "elapsed_s": 1800.0},
            {"step": 30, "loss": 0.15, "elapsed_s": 450.0, "threads": 2},
            {"step": 40, "loss": 0.1, "elapsed_s": 900.0, "threads": 2}]
    (run / "fluent-finetune").mkdir()
    (run / "fluent-finetune" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "export"
    out.mkdir()
    save_json({"model": to_dict(model_config("tiny"))}, out / "config.json")
    text = write_model_card(run, out, threads=1, extra="## Measured\nnumbers").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| fluent-finetune"))
    assert "| residual |" in row and "0.300 -> 0.100" in row and row.endswith("| 1.00 |")  # (1800 + 2*900) s
    assert "Total: 1.00 CPU-hours" in text and text.rstrip().endswith("numbers")
    # A snapshot exported at step 20 reports the stage up to there only.
    save_json({"model": to_dict(model_config("tiny")), "snapshot_step": 20}, out / "config.json")
    text = write_model_card(run, out, threads=1, upto="fluent-finetune").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| fluent-finetune"))
    assert "| 20 |" in row and "0.300 -> 0.200" in row and row.endswith("| 0.50 |")
    assert "at step 20 of 2000" in text


def test_recipe_sampling_defaults_are_checked():
    assert get_recipe("tiny").sampling["image_guidance"] == 1.0
    with pytest.raises(ConfigError, match="recipe sampling key 'guidance'"):
        from animated_stickers.training.recipes import RECIPES

        RECIPES["bad-sampling"] = {**RECIPES["tiny"], "name": "bad-sampling", "sampling": {"guidance": 2}}
        try:
            get_recipe("bad-sampling")
        finally:
            del RECIPES["bad-sampling"]


def test_a_folder_of_user_videos_is_prepared_trained_and_sampled(tmp_path):
    """The one data path, end to end through the CLI: `data prepare --videos` -> `train --data` -> animate."""
    from PIL import Image
    from typer.testing import CliRunner

    from animated_stickers.cli import app
    from animated_stickers.sampling.pipeline import AnimatePipeline
    from training_fixtures import make_user_videos

    videos = make_user_videos(tmp_path / "videos")
    runner = CliRunner()
    res = runner.invoke(app, ["data", "prepare", str(tmp_path / "prepared"), "--videos", str(videos), "--no-mv",
                              "--bucket-score", "frame_diff"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "--recipe", "smoke", "--data", str(tmp_path / "prepared"),
                              "--run-dir", str(tmp_path / "run"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    model_dir = tmp_path / "run" / "decoder" / "model"
    rows = [json.loads(x) for x in (tmp_path / "run" / "video" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2
    still = Image.open(videos / "ball0.gif").convert("RGBA")
    frames = AnimatePipeline.from_dir(model_dir).animate([still], ["a blue ball bouncing"])[0]
    assert len(frames) == 8 and frames[0].size == still.size
    # No prepared data: one clear line, not a traceback.
    res = runner.invoke(app, ["train", "--recipe", "smoke", "--data", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "--data" in res.output and "Traceback" not in res.output
