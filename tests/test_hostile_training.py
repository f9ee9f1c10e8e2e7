"""Run folders hold safetensors + JSON only: resume is exact, and nothing in a run folder is unpickled."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from animated_stickers.config import model_config
from animated_stickers.models.checkpoint import StickerModel
from animated_stickers.training.banks import FrameBank
from animated_stickers.training.loop import load_ema_weights, train_stage
from animated_stickers.training.recipes import get_recipe
from animated_stickers.training.state import TrainingStateError
from animated_stickers.training.tasks import VAETask

RECIPE = get_recipe("smoke", ["steps=4", "checkpoint_every=2", "warmup=1"])
STAGE = RECIPE.stages[0]
BANK = FrameBank(np.random.default_rng(0).integers(0, 255, (16, 32, 32, 4), dtype=np.uint8))


def _task() -> VAETask:
    torch.manual_seed(0)  # the same fresh model every call, as a restarted job builds it
    return VAETask(StickerModel.create(model_config("tiny", overrides=RECIPE.model), video=False), BANK, STAGE)


def _run(run_dir: Path, max_steps: int | None) -> tuple[int, torch.Tensor, VAETask]:
    task = _task()
    step = train_stage(task, STAGE, run_dir, accelerator=Accelerator(cpu=True), max_steps=max_steps)
    return step, torch.cat([p.detach().flatten() for p in task.parameters()]), task


class _Boom:
    """Unpickling this writes a marker file: proof that a loader ran code from the run folder."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def test_resume_is_exact_and_checkpoints_hold_no_pickles(tmp_path):
    step, straight, _ = _run(tmp_path / "straight", None)
    assert step == 4
    first, _, _ = _run(tmp_path / "resumed", 2)
    ckpt = tmp_path / "resumed" / "checkpoint-2"
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == ["ema.safetensors", "model.safetensors", "optimizer.safetensors", "progress.json",
                     "rng-0.json", "rng-0.safetensors", "state.json"]
    # A crafted pickle dropped into the checkpoint (accelerate's old file names) is never opened.
    marker = tmp_path / "marker"
    for name in ("custom_checkpoint_0.pkl", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"):
        (ckpt / name).write_bytes(pickle.dumps(_Boom(marker)))
    second, resumed, task = _run(tmp_path / "resumed", None)
    assert (first, second) == (2, 4)
    assert not marker.exists()
    assert torch.equal(straight, resumed)  # model, EMA, optimizer, LR schedule and RNG all restored
    # The finished stage's EMA weights read back from the last checkpoint alone.
    fresh = _task()
    assert load_ema_weights(fresh, STAGE, tmp_path / "resumed") == 4
    for a, b in zip(fresh.trainable_parameters(), task.trainable_parameters()):
        assert torch.equal(a, b)
    assert not marker.exists()


def test_old_pickle_checkpoint_is_refused_with_one_line(tmp_path):
    ckpt = tmp_path / "run" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    marker = tmp_path / "marker"
    (ckpt / "custom_checkpoint_0.pkl").write_bytes(pickle.dumps(_Boom(marker)))
    (ckpt / "model.safetensors").write_bytes(b"")
    (ckpt / "progress.json").write_text(json.dumps({"step": 2}))
    with pytest.raises(TrainingStateError, match="pickle format, which is never loaded"):
        train_stage(_task(), STAGE, tmp_path / "run", accelerator=Accelerator(cpu=True))
    assert not marker.exists()


def test_no_pickle_loading_in_src():
    src = Path(__file__).resolve().parents[1] / "src"
    for path in src.rglob("*.py"):
        text = path.read_text()
        for banned in ("torch.load(", "pickle.load", "load_state(", "allow_pickle=True"):
            assert banned not in text, f"{path}: {banned}"
