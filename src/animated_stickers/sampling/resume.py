"""Reruns of `stickers animate --inputs DIR --outputs DIR`: skip the outputs already written, and only those.

Beside each output OUT/name.webp a small JSON sidecar, OUT/.name.webp.json, records what made it: the
input image's sha256, the prompt, the settings (the sticker's own seed, fps, preset, ...) and the model's
weights digest. A rerun skips an output only when the file exists and its sidecar says the same for all
four; anything else (no sidecar, an edited input, other settings or weights) redoes it. The sidecar is
written after its output, so a run killed between the two redoes that sticker.

It also records the loop as written (`loop`: the generation path, the file's frames and fps, and the index
of the conditioning frame in the file: config.cond_index_for, moved where a preset retimes the loop or shows
that frame first). That is what the output is, not what made it, so a rerun does not compare it; `eval auto`
reads the conditioning frame from it (`recorded_loop`) instead of guessing the frame nearest the still.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..config import SamplingConfig
from .onnx_pipeline import file_digest, weights_digest

VERSION = 2  # 2: the loop as written (path, frames, fps, cond_index)


def sidecar_path(out: Path) -> Path:
    """Where the sidecar of output `out` lives (hidden, beside it)."""
    return out.with_name(f".{out.name}.json")


def record(image: Path, prompt: str, params: SamplingConfig, extra: dict, model_digest: str) -> dict:
    """What a sidecar says made one output from `image` and `prompt` with `params` (its own seed)."""
    return {"version": VERSION, "input": file_digest(image), "prompt": prompt,
            "settings": {**dataclasses.asdict(params), **extra}, "model": model_digest}


def recorded_loop(out: Path) -> dict:
    """The loop an output's sidecar records ({"path", "frames", "fps", "cond_index"}), {} when there is no
    readable sidecar or it predates the record (VERSION 1)."""
    try:
        loop = json.loads(sidecar_path(out).read_text(encoding="utf-8")).get("loop")
    except (OSError, ValueError, AttributeError):
        return {}
    return loop if isinstance(loop, dict) else {}


def already_made(out: Path, rec: dict) -> bool:
    """True when `out` exists and its sidecar's record of what made it matches `rec` exactly."""
    side = sidecar_path(out)
    if not (out.is_file() and side.is_file()):
        return False
    try:
        made = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # an unreadable sidecar proves nothing: make the output again
    return isinstance(made, dict) and {k: v for k, v in made.items() if k != "loop"} == rec


def mark_made(out: Path, rec: dict, loop: dict | None = None) -> None:
    """Write `out`'s sidecar (after `out` itself): what made it, and the loop as written."""
    atomic_write_text(sidecar_path(out), json.dumps({**rec, "loop": loop or {}}, sort_keys=True) + "\n")


class Sidecars:
    """The sidecars of one call: job j (an image, prompt and output) made with `params` at seed + j."""

    def __init__(self, model_folder: Path, params: SamplingConfig, extra: dict) -> None:
        self.params, self.extra = params, extra
        self.model_digest = weights_digest(model_folder)

    def _record(self, j: int, job) -> dict:
        own = dataclasses.replace(self.params, seed=self.params.seed + j)  # sticker j's own seed
        return record(job.image, job.prompt, own, self.extra, self.model_digest)

    def todo(self, jobs: list) -> list[int]:
        """Indices of the jobs (jobs.CheckedJob) whose output is not vouched for by its sidecar."""
        return [j for j, job in enumerate(jobs) if not already_made(job.out, self._record(j, job))]

    def mark(self, j: int, job, loop: dict | None = None) -> None:
        """Job j's output is written (`loop`: the loop as written): write its sidecar."""
        mark_made(job.out, self._record(j, job), loop)


def runs(indices: list[int], size: int) -> list[list[int]]:
    """`indices` (ascending) cut into batches of at most `size` consecutive indices, so job j keeps the seed
    seed + j whatever was skipped before it."""
    out: list[list[int]] = []
    for j in indices:
        if out and len(out[-1]) < size and out[-1][-1] == j - 1:
            out[-1].append(j)
        else:
            out.append([j])
    return out
