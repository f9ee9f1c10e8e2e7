"""`stickers hitl generate`: every teacher's candidates for every prompt (paper 2.3: six per prompt).

Jobs: prompt i, slot k in 0..per_prompt-1 -> teacher k % n_teachers, file
OUT/<teacher>@<k // n_teachers>/<stem>.webp, seed `seed + i * per_prompt + k`. Every candidate depends only
on its job, so the work splits freely: under `accelerate launch` (or torch.distributed.run) process r of
n takes every n-th job. Each file is written atomically (temp + rename) and is its own done marker, so a
killed run resumes with the same command and never makes a candidate twice. Each process appends what it
made to OUT/.log/rank-R.jsonl; when all are done, rank 0 writes OUT/manifest.json.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import atomic_write_text, is_partial
from ..config import PATH_FPS
from ..errors import UserError
from ..prompts_file import PROMPTS_FILE
from ..sampling.params import check_seeds
from .inputs import MAX_PER_PROMPT, check_count, load_still, read_candidates_manifest, read_json_file

PLAN_FILE, MANIFEST_FILE, LOG_DIR = "plan.json", "manifest.json", ".log"


@dataclass(frozen=True)
class Job:
    prompt_index: int
    stem: str
    slot: int  # 0 .. per_prompt-1 over all teachers
    teacher: str
    folder: str  # <teacher>@<n>: one importer "model" sub-folder per teacher and repeat
    seed: int

    @property
    def rel(self) -> str:
        return f"{self.folder}/{self.stem}.webp"


def plan_jobs(entries: list[dict], teachers: list[str], per_prompt: int = 6, seed: int = 0) -> list[Job]:
    """All jobs, ordered by (teacher, repeat, prompt) so each process gets a share of every teacher."""
    if not teachers:
        raise UserError("no teachers given")
    check_count(per_prompt, "--per-prompt", MAX_PER_PROMPT)
    check_seeds(seed, len(entries) * per_prompt)  # candidate k of prompt i uses seed + i * per_prompt + k
    jobs = []
    for i, e in enumerate(entries):
        stem = Path(e["image"]).stem
        for k in range(per_prompt):
            t = teachers[k % len(teachers)]
            jobs.append(Job(i, stem, k, t, f"{t}@{k // len(teachers)}", seed + i * per_prompt + k))
    return sorted(jobs, key=lambda j: (j.teacher, j.folder, j.prompt_index))


def my_share(jobs: list[Job], rank: int, world: int) -> list[Job]:
    """Process `rank` of `world` takes every world-th job."""
    return jobs[rank::world]


def _check_plan(out: Path, plan: dict) -> None:
    """A resumed run must use the same prompts, teachers and seeds as the run it continues."""
    f = out / PLAN_FILE
    if f.is_file():
        old = read_json_file(f, "the plan written by `stickers hitl generate`")
        diff = sorted(k for k in plan if old.get(k) != plan[k])
        if diff:
            raise UserError(f"{out}: already holds candidates made with another {diff[0]} "
                            f"({old.get(diff[0])!r}); expected the same settings, or a new --out folder")
    else:
        atomic_write_text(f, json.dumps(plan, indent=2) + "\n")


def _remove_partials(out: Path) -> int:
    """Temp files of writes killed mid-way (SIGKILL skips the cleanup)."""
    n = 0
    for p in out.glob("*/.*"):
        if is_partial(p):
            p.unlink(missing_ok=True)
            n += 1
    return n


def make_candidates(prompts_dir: Path, models: dict[str, Path], out: Path, per_prompt: int = 6, seed: int = 0,
             steps: int | None = None, progress: bool = True, prompt_motion: bool | None = None) -> dict:
    """Make this process's share of the candidates (skipping finished ones); returns a summary.

    Run the same call in every process of an Accelerate launch; rank 0 prepares the folder and writes
    the manifest once everyone is done."""
    from accelerate import PartialState

    from .prompts import read_prompt_set

    entries = read_prompt_set(prompts_dir, check_images=True)
    teachers = sorted(models)
    jobs = plan_jobs(entries, teachers, per_prompt, seed)
    # On CPU, Accelerate only joins the launched processes (gloo) when told it runs on the CPU.
    state = PartialState(cpu=not _has_cuda())
    rank, world = state.process_index, state.num_processes
    plan = {"prompts": str(prompts_dir.resolve()), "n_prompts": len(entries), "teachers": teachers,
            "models": {t: str(Path(models[t]).resolve()) for t in teachers}, "per_prompt": per_prompt,
            "seed": seed, "steps": steps, "prompt_motion": prompt_motion}
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        _check_plan(out, plan)
        _remove_partials(out)
        for j in jobs:
            (out / j.folder).mkdir(exist_ok=True)
        # The importer's prompts.json: image names as in the prompt set (stems name the candidates).
        atomic_write_text(out / PROMPTS_FILE, json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
        (out / LOG_DIR).mkdir(exist_ok=True)
    state.wait_for_everyone()
    if not state.is_main_process:
        _check_plan(out, plan)
    mine = my_share(jobs, rank, world)
    todo = [j for j in mine if not (out / j.rel).is_file()]
    made = _run(todo, entries, prompts_dir, models, out, rank, world, len(mine), steps, progress, prompt_motion)
    state.wait_for_everyone()
    summary = {"rank": rank, "world": world, "jobs": len(mine), "made_now": made,
               "skipped": len(mine) - len(todo)}
    if state.is_main_process:
        write_manifest(out, jobs, plan)
    return summary


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _run(todo: list[Job], entries: list[dict], prompts_dir: Path, models: dict[str, Path], out: Path,
         rank: int, world: int, total: int, steps: int | None, progress: bool,
         prompt_motion: bool | None = None) -> int:
    """Generate `todo`, one teacher loaded at a time; one line per candidate in the rank's log."""
    import torch
    from tqdm import tqdm

    from ..export.formats import write_animation
    from ..sampling.params import check_path_settings, with_loop, with_overrides
    from ..sampling.paths import folder_path, open_pipeline

    torch.manual_seed(0)
    bar = tqdm(total=total, initial=total - len(todo), desc=f"candidates (process {rank + 1}/{world})",
               unit="cand", position=rank, disable=not progress, file=sys.stderr, dynamic_ncols=True)
    log = out / LOG_DIR / f"rank-{rank}.jsonl"
    made = 0
    with log.open("a", encoding="utf-8") as fh:
        for teacher in sorted({j.teacher for j in todo}):
            # A teacher is a video model by recipe; a motion model folder (NAME=DIR) runs on the motion path.
            path = folder_path(models[teacher])
            check_path_settings(path, {"prompt_motion": prompt_motion})
            pipe = open_pipeline(path, models[teacher], models[teacher])
            fps = PATH_FPS[path]  # video: 8 frames at 8 fps (paper 3.1); motion: 48 at 24
            for job in (j for j in todo if j.teacher == teacher):
                entry = entries[job.prompt_index]
                still = load_still(prompts_dir / entry["image"], f"'{prompts_dir / PROMPTS_FILE}'")
                params = with_loop(with_overrides(pipe.sampling, seed=job.seed, steps=steps,
                                                  prompt_motion=prompt_motion), path, fps)
                t0 = time.perf_counter()
                frames = pipe.animate([still], [entry["prompt"]], params)[0]
                write_animation(frames, out / job.rel, fps=fps, lossless=True)
                row = {**asdict(job), "rank": rank, "world": world, "seconds": round(time.perf_counter() - t0, 3)}
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                made += 1
                bar.update()
    bar.close()
    return made


def write_manifest(out: Path, jobs: list[Job], plan: dict) -> dict:
    """OUT/manifest.json: every planned candidate and whether its file exists (rank 0, at the end)."""
    rows = [{**asdict(j), "file": j.rel, "done": (out / j.rel).is_file()} for j in jobs]
    manifest = {**plan, "candidates": len(rows), "done": sum(r["done"] for r in rows), "jobs": rows}
    atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(out: Path) -> dict:
    """The manifest of a finished `make_candidates` (UserError when missing)."""
    f = out / MANIFEST_FILE
    if not f.is_file():
        raise UserError(f"--candidates {out}: no {MANIFEST_FILE}; run `stickers hitl generate` to the end first")
    return read_candidates_manifest(f)


def teacher_of(folder_or_model: str) -> str:
    """The teacher name of a candidate folder / store model name (`<teacher>@<n>`)."""
    return folder_or_model.rsplit("@", 1)[0]
