"""Training: recipes, a 2-step smoke run of every stage, CFG dropout, freezing, 2-process DDP + resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from animated_stickers.config import ConfigError, model_config
from animated_stickers.models.checkpoint import StickerModel, load_model
from animated_stickers.training.banks import LatentBank, VideoEntry
from animated_stickers.training.recipes import get_recipe
from animated_stickers.training.stages import run_recipe
from animated_stickers.training.tasks import DiffusionTask

sys.path.insert(0, str(Path(__file__).parent))
from training_fixtures import make_data_root  # noqa: E402

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
    root = make_data_root(tmp_path / "data")
    recipe = get_recipe("smoke")
    done = run_recipe(recipe, tmp_path / "run", root)
    assert [d.parent.name for d in done] == ["vae", "t2i", "video"]
    vae, t2i, video = (load_model(d) for d in done)
    assert vae.cfg.vae.scaling_factor != 1.0  # fitted to the data after the VAE stage
    assert t2i.stage == "t2i" and video.stage == "video"
    assert video.unet.in_channels == 16  # IP2P: noisy latent + sticker latent
    for stage in ("vae", "t2i", "video"):
        rows = [json.loads(x) for x in (tmp_path / "run" / stage / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["step"] == 2 and torch.isfinite(torch.tensor(rows[-1]["loss"]))
    # The video stage trains only temporal layers + conv_in (freeze_spatial), so spatial weights match t2i.
    a, b = t2i.unet.state_dict(), video.unet.state_dict()
    assert torch.equal(a["unet.down_blocks.0.resnets.0.conv1.weight"], b["unet.down_blocks.0.resnets.0.conv1.weight"])
    # Rerunning a finished recipe trains nothing and returns the same folders.
    assert run_recipe(recipe, tmp_path / "run", root) == done


def _bank(n: int = 4, frames: int = 24) -> LatentBank:
    lat = torch.randn(n * frames, 8, 4, 4).half()
    entries = [VideoEntry(f"v{i}", f"caption {i}", 12.0, 8.0, 0.1, i * frames, frames) for i in range(n)]
    return LatentBank(lat, [torch.randn(n, 6, 384).half()], entries)


def test_cfg_dropout_rates_and_null_conditions():
    cfg = model_config("tiny", overrides=["resolution=32", "vae.block_out_channels=[8,16,16]",
                                          "vae.norm_num_groups=4", "unet.block_out_channels=[16,32]",
                                          "unet.attention_blocks=[false,true]", "unet.head_dim=8",
                                          "unet.norm_num_groups=4", "unet.cross_attention_dim=16"])
    model = StickerModel.create(cfg)
    stage = get_recipe("tiny").stages[-1]
    stage.batch_size = 4000
    task = DiffusionTask(model, {"fluent": _bank()}, stage, [torch.zeros(6, 384)])
    batch = task.make_batch(torch.Generator().manual_seed(0))
    both = (batch["drop_text"] & batch["drop_image"]).float().mean().item()
    text_only = (batch["drop_text"] & ~batch["drop_image"]).float().mean().item()
    image_only = (batch["drop_image"] & ~batch["drop_text"]).float().mean().item()
    for rate, want in [(both, stage.drop_both), (text_only, stage.drop_text), (image_only, stage.drop_image)]:
        assert abs(rate - want) < 0.015
    assert batch["z0"].shape == (4000, 8, 8, 4, 4)
    # Middle-frame conditioning: the conditioning latent is frame 3 of the clip.
    assert torch.equal(batch["cond"], batch["z0"][:, :, 3])


def test_freeze_spatial_trains_only_temporal_layers_and_conv_in():
    cfg = model_config("tiny", overrides=["resolution=32", "vae.block_out_channels=[8,16,16]",
                                          "vae.norm_num_groups=4", "unet.block_out_channels=[16,32]",
                                          "unet.attention_blocks=[false,true]", "unet.head_dim=8",
                                          "unet.norm_num_groups=4", "unet.cross_attention_dim=16"])
    model = StickerModel.create(cfg)
    stage = get_recipe("tiny").stages[2]
    assert stage.freeze_spatial
    task = DiffusionTask(model, {"procedural": _bank()}, stage, [torch.zeros(6, 384)])
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
