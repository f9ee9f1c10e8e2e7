"""One training loop on Hugging Face Accelerate for every stage (CPU, 1 GPU, DDP, FSDP, DeepSpeed).

The same code runs under `accelerate launch` with any config. A stage's task is an nn.Module whose
forward(step_batch) returns the loss, so DDP/FSDP see an ordinary forward. Batches are a pure
function of (seed, step, rank), which makes resume exact (model, EMA, optimizer, LR scheduler, RNG
and data position are all restored from the last checkpoint). Checkpoints are safetensors + JSON
(training/state.py), never pickles: nothing in a run folder can run code when resumed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from .recipes import Stage
from .state import load_ema_state, load_training_state, save_training_state


class Task(Protocol):
    """What the loop needs from a stage: trainable parameters, a batch maker and a loss forward."""

    def trainable_parameters(self) -> list[torch.nn.Parameter]: ...

    def make_batch(self, gen: torch.Generator) -> dict: ...

    def __call__(self, batch: dict) -> tuple[torch.Tensor, dict]: ...


def _latest_checkpoint(run_dir: Path) -> Path | None:
    # progress.json is written last: a checkpoint without it was interrupted and is ignored.
    ckpts = sorted((p for p in run_dir.glob("checkpoint-*") if (p / "progress.json").is_file()),
                   key=lambda p: int(p.name.split("-")[1]))
    return ckpts[-1] if ckpts else None


def _ema(params: list[torch.nn.Parameter], stage: Stage) -> EMAModel:
    """The EMA of a stage's weights (training and `load_ema_weights` must build the same one)."""
    return EMAModel(params, decay=stage.ema_decay, use_ema_warmup=True, power=0.75)


def batch_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The RNG that makes step `step`'s batch on `rank`: deterministic and resumable."""
    return torch.Generator().manual_seed(hash((seed, step, rank)) % (2**63))


def train_stage(task: torch.nn.Module, stage: Stage, run_dir: Path, accelerator: Accelerator | None = None,
                max_steps: int | None = None) -> int:
    """Train `task` for `stage.steps` (resuming from run_dir/checkpoint-*); returns the step reached.

    When the stage completes, the task's parameters hold the EMA weights (the stage's result).

    `max_steps` stops early (a budgeted session) after that many steps *in this call*, leaving a
    checkpoint to resume from.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    acc = accelerator or Accelerator(gradient_accumulation_steps=stage.grad_accum,
                                     mixed_precision=stage.mixed_precision)
    set_seed(stage.seed)
    params = task.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=0.01, betas=(0.9, 0.99))
    sched = get_scheduler("cosine", opt, num_warmup_steps=stage.warmup,
                          num_training_steps=stage.steps * stage.grad_accum)
    model, opt, sched = acc.prepare(task, opt, sched)
    ema = _ema(params, stage)
    acc.register_for_checkpointing(ema)  # save_checkpoint finds the EMA among accelerate's registered objects

    step = 0
    last = _latest_checkpoint(run_dir)
    if last is not None:
        load_training_state(last, acc, model, opt, sched, ema)
        step = json.loads((last / "progress.json").read_text())["step"]
    metrics_path = run_dir / "metrics.jsonl"
    bar = tqdm(total=stage.steps, initial=step, desc=f"{stage.name}", unit="step",
               disable=not acc.is_local_main_process, dynamic_ncols=True)
    stop_at = stage.steps if max_steps is None else min(stage.steps, step + max_steps)
    t0, window = time.time(), []
    while step < stop_at:
        model.train()
        for micro in range(stage.grad_accum):
            gen = batch_generator(stage.seed, step * stage.grad_accum + micro, acc.process_index)
            batch = task.make_batch(gen)
            with acc.accumulate(model):
                loss, logs = model(batch)
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
        ema.step(params)
        step += 1
        window.append(loss.item())
        bar.update(1)
        if step % stage.log_every == 0 or step == stop_at:
            row = {"step": step, "loss": sum(window) / len(window), "lr": sched.get_last_lr()[0],
                   "elapsed_s": round(time.time() - t0, 1), "threads": torch.get_num_threads(),
                   **{k: float(v) for k, v in logs.items()}}
            window = []
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if acc.is_main_process:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
        if step % stage.checkpoint_every == 0 or step == stop_at:
            save_checkpoint(acc, run_dir, step)
    bar.close()
    acc.wait_for_everyone()
    if step >= stage.steps:
        ema.copy_to(params)
    return step


def load_ema_weights(task: torch.nn.Module, stage: Stage, run_dir: Path) -> int:
    """Put the EMA weights of the latest checkpoint in run_dir into `task`'s trainable parameters;
    returns its step. Reads the safetensors + JSON files `train_stage` checkpoints (one process)."""
    from .state import _load_tensors

    last = _latest_checkpoint(run_dir)
    if last is None:
        raise FileNotFoundError(f"no finished checkpoint in '{run_dir}': train the stage first")
    task.load_state_dict(_load_tensors(last / "model.safetensors"))
    params = task.trainable_parameters()
    ema = _ema(params, stage)
    load_ema_state(ema, last)
    ema.copy_to(params)
    return json.loads((last / "progress.json").read_text())["step"]


def save_checkpoint(acc: Accelerator, run_dir: Path, step: int, keep: int = 2) -> None:
    """Model, EMA, optimizer, LR scheduler and RNG state (training/state.py) + our step counter; keeps
    the newest `keep` checkpoints. The parts are the ones `train_stage` prepared/registered with `acc`."""
    out = run_dir / f"checkpoint-{step}"
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    acc.wait_for_everyone()
    save_training_state(out, acc, acc._models[0], acc._optimizers[0], acc._schedulers[0], acc._custom_objects[0],
                        acc.is_main_process)
    acc.wait_for_everyone()  # every rank's RNG file is written before progress.json marks the checkpoint done
    if acc.is_main_process:
        (out / "progress.json").write_text(json.dumps({"step": step}))
        for old in sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]:
            for f in sorted(old.rglob("*"), reverse=True):
                f.unlink() if f.is_file() else f.rmdir()
            old.rmdir()
    acc.wait_for_everyone()
