"""Run by test_training.py with 2 CPU processes (gloo): trains a tiny VAE stage straight for 4 steps, and
again as 2 steps + a resume to 4 from the checkpoint, writing each rank's parameter checksums."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from animated_stickers.config import model_config
from animated_stickers.models.checkpoint import StickerModel
from animated_stickers.training.banks import FrameBank
from animated_stickers.training.loop import train_stage
from animated_stickers.training.recipes import get_recipe
from animated_stickers.training.tasks import VAETask

torch.set_num_threads(1)
out_dir = Path(sys.argv[1])
recipe = get_recipe("smoke", ["steps=4", "checkpoint_every=2", "warmup=1"])
stage = recipe.stages[0]
bank = FrameBank(np.random.default_rng(0).integers(0, 255, (16, 32, 32, 4), dtype=np.uint8))


def run(run_dir: Path, max_steps: int | None) -> tuple[int, torch.Tensor]:
    torch.manual_seed(0)  # same fresh model every call, as a restarted job would build it
    model = StickerModel.create(model_config("tiny", overrides=recipe.model), video=False)
    step = train_stage(VAETask(model, bank, stage), stage, run_dir, accelerator=Accelerator(), max_steps=max_steps)
    return step, torch.cat([p.detach().flatten() for p in model.vae.parameters()])


_, straight = run(out_dir / "straight", None)
first, _ = run(out_dir / "resumed", 2)
second, resumed = run(out_dir / "resumed", None)
state = Accelerator()
(out_dir / f"rank{state.process_index}.json").write_text(json.dumps({
    "world": state.num_processes, "steps": [first, second],
    "straight": straight[:64].tolist(), "straight_sum": float(straight.double().sum()),
    "resumed_max_diff": float((straight - resumed).abs().max()),
}))
