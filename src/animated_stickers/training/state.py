"""Training state on disk as safetensors + JSON only: a run folder is as safe to open as a model folder.

Accelerate's `save_state`/`load_state` pickle the optimizer, scheduler, RNG and custom objects (EMA),
and unpickling runs code, so a shared run folder could execute anything. Here every tensor goes to a
safetensors file and every scalar/structure to JSON:

    model.safetensors      the unwrapped task's state_dict (what `load_ema_weights` reads)
    ema.safetensors        EMA shadow params, keys "shadow.{i}"
    optimizer.safetensors  optimizer state tensors, keys "{param index}.{name}" (e.g. "3.exp_avg")
    state.json             optimizer param groups + non-tensor state, LR scheduler, EMA scalars, grad scaler
    rng-{rank}.safetensors / rng-{rank}.json   each process's torch/CUDA/numpy/python RNG states
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

STATE_FILES = ("model.safetensors", "ema.safetensors", "optimizer.safetensors", "state.json")


class TrainingStateError(FileNotFoundError):
    """A checkpoint folder that cannot be resumed from; the message names the folder and file.

    A FileNotFoundError so the CLI's one-line error handling reports it."""


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise TrainingStateError(f"checkpoint '{path.parent}' has no {path.name}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise TrainingStateError(f"checkpoint file '{path}' is corrupted or not safetensors ({e})") from None


def _json(obj) -> str:
    return json.dumps(obj, allow_nan=True)


def split_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch optimizer state_dict -> (flat tensors, JSON-able rest) without losing anything."""
    tensors, scalars = {}, {}
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def join_optimizer_state(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    """The inverse of `split_optimizer_state` (param indices back to ints)."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for idx, slots in rest["scalars"].items():
        state.setdefault(int(idx), {}).update(slots)
    return {"state": state, "param_groups": rest["param_groups"]}


def save_training_state(folder: Path, acc, model, opt, sched, ema, is_main: bool) -> None:
    """Write the state files of one checkpoint; call on every process (FSDP gathers the weights)."""
    weights = acc.get_state_dict(model)  # unwrapped (and gathered under FSDP/DeepSpeed)
    _save_rng(folder, acc.process_index)
    if not is_main:
        return
    _save_tensors(weights, folder / "model.safetensors")
    ema_state = ema.state_dict()
    _save_tensors({f"shadow.{i}": p for i, p in enumerate(ema_state.pop("shadow_params"))},
                  folder / "ema.safetensors")
    opt_tensors, opt_rest = split_optimizer_state(opt.state_dict())
    _save_tensors(opt_tensors, folder / "optimizer.safetensors")
    scaler = acc.scaler.state_dict() if getattr(acc, "scaler", None) is not None else None
    meta = {"optimizer": opt_rest, "scheduler": sched.state_dict(), "ema": ema_state, "scaler": scaler}
    tmp = folder / "state.json.tmp"
    tmp.write_text(_json(meta))
    tmp.replace(folder / "state.json")


def load_training_state(folder: Path, acc, model, opt, sched, ema) -> None:
    """Restore what `save_training_state` wrote (every process reads the shared files + its own RNG)."""
    missing = [f for f in STATE_FILES if not (folder / f).is_file()]
    if missing:
        old = any(folder.glob("*.pkl")) or any(folder.glob("*.bin"))
        why = ("it was written in accelerate's pickle format, which is never loaded (it can run code): "
               "delete it to restart the stage" if old else f"{missing[0]} is missing")
        raise TrainingStateError(f"checkpoint '{folder}' cannot be resumed: {why}")
    try:
        meta = json.loads((folder / "state.json").read_text())
    except json.JSONDecodeError as e:
        raise TrainingStateError(f"checkpoint file '{folder / 'state.json'}' is not valid JSON ({e.msg})") from None
    acc.unwrap_model(model).load_state_dict(_load_tensors(folder / "model.safetensors"))
    opt.load_state_dict(join_optimizer_state(_load_tensors(folder / "optimizer.safetensors"), meta["optimizer"]))
    sched.load_state_dict(meta["scheduler"])
    load_ema_state(ema, folder, meta["ema"])
    if meta.get("scaler") is not None and getattr(acc, "scaler", None) is not None:
        acc.scaler.load_state_dict(meta["scaler"])
    _load_rng(folder, acc.process_index)


def load_ema_state(ema, folder: Path, scalars: dict | None = None) -> None:
    """Put ema.safetensors (+ the EMA scalars of state.json) into `ema`, on its own device."""
    if scalars is None:
        scalars = json.loads((folder / "state.json").read_text())["ema"]
    shadow = _load_tensors(folder / "ema.safetensors")
    device = ema.shadow_params[0].device if ema.shadow_params else "cpu"
    params = [shadow[f"shadow.{i}"].to(device) for i in range(len(shadow))]
    if len(params) != len(ema.shadow_params):
        raise TrainingStateError(f"checkpoint file '{folder / 'ema.safetensors'}' has {len(params)} tensors: "
                                 f"expected {len(ema.shadow_params)} (one per trainable parameter)")
    ema.load_state_dict({**scalars, "shadow_params": params})


def _save_rng(folder: Path, rank: int) -> None:
    np_state = np.random.get_state()  # ('MT19937', keys uint32[624], pos, has_gauss, cached_gaussian)
    tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64))}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    py_version, py_state, py_gauss = random.getstate()
    meta = {"numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_version, list(py_state), py_gauss]}
    _save_tensors(tensors, folder / f"rng-{rank}.safetensors")
    (folder / f"rng-{rank}.json").write_text(_json(meta))


def _load_rng(folder: Path, rank: int) -> None:
    path = folder / f"rng-{rank}.safetensors"
    if not path.is_file():  # resumed with more processes than saved: those ranks keep their seeded RNG
        return
    tensors = _load_tensors(path)
    meta = json.loads((folder / f"rng-{rank}.json").read_text())
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])
    name, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, py_gauss = meta["python"]
    random.setstate((version, tuple(state), py_gauss))
