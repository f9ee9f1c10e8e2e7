"""`stickers hitl ...`: one round of the ensemble-of-teachers loop (paper 2.3).

  stickers hitl prompts --out R/prompts --n 300 [--split train]          # prompts + stills
  stickers hitl teachers --init weights/tiny --data PREPARED --out R/teachers   # 3 teacher recipes (resumable)
  accelerate launch --multi_gpu --num_processes 2 -m animated_stickers.cli hitl generate --prompts R/prompts \\
      --teachers R/teachers --out R/candidates                           # 6 per prompt, any number of processes
  stickers hitl select --candidates R/candidates --job round-1 --db hitl.sqlite [--auto]
  stickers hitl finetune --candidates R/candidates --job round-1 --db hitl.sqlite --init weights/tiny \\
      --data PREPARED --out R/student
  stickers hitl report --candidates R/candidates --job round-1 --db hitl.sqlite --teachers R/teachers \\
      --student R/student --eval-prompts R/heldout --out hitl-round-1.md
Round 2: the student joins the teachers: `generate --teachers R/teachers --model student=R/student/run/finetune/model`.
Launchers (both checked on CPU with gloo): `accelerate launch --multi_gpu --num_processes N -m animated_stickers.cli
hitl generate ...` or `python -m torch.distributed.run --nproc_per_node N -m animated_stickers.cli hitl generate ...`.
(`accelerate launch --cpu` starts a single process unless mpirun is set up; a plain `stickers hitl generate` is one.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import one_line_errors
from ..sampling.options import settings_options

app = typer.Typer(help="Ensemble-of-teachers loop (paper 2.3): prompts, teachers, candidates, selection, student.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

Db = Annotated[str, typer.Option(help="annotation store: SQLAlchemy URL or SQLite file (as `eval human`)")]
Candidates = Annotated[Path, typer.Option(help="folder made by `stickers hitl generate`")]
Job = Annotated[str, typer.Option(help="HITL job name in the store")]
Data = Annotated[list[Path], typer.Option("--data", help="prepared real data (`stickers data prepare`), repeatable")]


def _bar(desc: str):
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, file=sys.stderr, leave=False)


@app.command()
@one_line_errors
def prompts(out: Annotated[Path, typer.Option(help="folder for prompts.json + one still per prompt")],
            n: Annotated[int, typer.Option(help="number of prompts (spread over the three buckets), 1 to 10,000")]
            = 300,
            stills: Annotated[Path | None, typer.Option(help="folder of still stickers (default: Fluent 3D "
                                                             "stills of the data cache)")] = None,
            cache: Annotated[Path | None, typer.Option(help="data cache (default $STICKERS_CACHE)")] = None,
            split: Annotated[str, typer.Option(help="stills of this split: train, heldout or all "
                                                    "(test sets are never used)")] = "train",
            seed: int = 0, size: Annotated[int, typer.Option(help="stills fitted into this many px")] = 128) -> None:
    """Write a prompt set in the three buckets (action, emotion, open-ended), one sticker per prompt."""
    from collections import Counter

    from .inputs import MAX_PROMPTS, check_count
    from .prompts import still_paths, write_prompt_set

    check_count(n, "--n", MAX_PROMPTS)  # before any still is looked for
    entries = write_prompt_set(out, still_paths(stills, cache, split), n, seed, size)
    typer.echo(f"wrote {len(entries)} prompts to {out / 'prompts.json'}: "
               f"{dict(Counter(e['bucket'] for e in entries))}, {len({e['sticker'] for e in entries})} stickers")


@app.command()
@one_line_errors
def teachers(out: Annotated[Path, typer.Option(help="folder for one training run per teacher")],
             init: Annotated[Path, typer.Option(help="model folder every teacher starts from")],
             data: Data,
             teacher: Annotated[list[str], typer.Option("--teacher", help="teacher recipe (repeatable; default: "
                                                                          "dynamic-v, frozen-8fps, fixed-4fps)")] = [],
             steps: Annotated[int | None, typer.Option(help="finetune steps per teacher (default 300)")] = None,
             max_steps: Annotated[int | None, typer.Option(help="stop each teacher after this many steps in this "
                                                                "call (resume later)")] = None,
             set_: Annotated[list[str], typer.Option("--set", help="override a stage field, e.g. batch_size=2")] = [],
             ) -> None:
    """Train (or resume) the teachers: short finetunes that differ only in their recipe."""
    from .teachers import DEFAULT_TEACHERS, TEACHERS, train_teachers

    names = teacher or list(DEFAULT_TEACHERS)
    done = train_teachers(out, names, data, init, steps, max_steps, set_)
    for name, model in done.items():
        typer.echo(f"{name}: {model or 'not finished (rerun to resume)'}  [{TEACHERS[name] or 'base recipe'}]")


@app.command("generate")
@one_line_errors
@settings_options(only=("steps", "prompt_motion"))
def generate_cmd(prompts: Annotated[Path, typer.Option(help="folder made by `stickers hitl prompts`")],
             out: Annotated[Path, typer.Option(help="candidates folder: <teacher>@<n>/<stem>.webp")],
             teachers: Annotated[Path | None, typer.Option(help="folder made by `stickers hitl teachers`")] = None,
             model: Annotated[list[str], typer.Option("--model", help="extra teacher NAME=MODEL_DIR (repeatable), "
                                                                      "e.g. last round's student")] = [],
             per_prompt: Annotated[int, typer.Option(help="candidates per prompt, over all teachers (1 to 32)")] = 6,
             seed: int = 0,
             threads: Annotated[int, typer.Option(help="torch threads per process (0: torch's default)")] = 0,
             settings: dict | None = None,
             ) -> None:
    """Candidates from every teacher for every prompt; run under `accelerate launch` to split the work."""
    from ..config import SamplingConfig
    from ..cpu import check_threads
    from ..sampling.params import from_flags
    from .candidates import make_candidates
    from .inputs import MAX_PER_PROMPT, check_count
    from .teachers import find_models

    check_threads(threads)
    check_count(per_prompt, "--per-prompt", MAX_PER_PROMPT)
    from_flags(SamplingConfig(), settings or {})  # the sampling options' ranges, before any model loads
    steps, prompt_motion = (settings or {}).get("steps"), (settings or {}).get("prompt_motion")
    import torch

    if threads:
        torch.set_num_threads(threads)
    s = make_candidates(prompts, find_models(teachers, model), out, per_prompt, seed, steps,
                        prompt_motion=prompt_motion)
    typer.echo(f"process {s['rank'] + 1}/{s['world']}: {s['made_now']} made, {s['skipped']} already there, "
               f"{s['jobs']} in its share")


@app.command("select")
@one_line_errors
def select_cmd(candidates: Candidates, job: Job, db: Db = "sqlite:///hitl.sqlite",
               auto: Annotated[bool, typer.Option("--auto", help="three automatic raters vote instead of people")]
               = False,
               annotators: Annotated[int, typer.Option(min=1, help="human annotators per item")] = 3,
               min_votes: Annotated[int, typer.Option(help="votes a candidate needs to be kept")] = 2,
               as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False) -> None:
    """Create the HITL job (people pick in `stickers eval human serve`), or let the automatic panel vote."""
    from ..eval.human.store import Store
    from .inputs import check_sqlite
    from .select import import_candidates, job_summary, select_auto

    store = Store(check_sqlite(db))
    if auto:
        summary = select_auto(store, job, candidates, progress=_bar("judge"))
    elif any(j["name"] == job for j in store.jobs()):
        summary = job_summary(store, job, candidates, min_votes)  # a human job: how far it is
    else:
        import_candidates(store, job, candidates, annotators)
        typer.echo(f"created HITL job {job!r}; next: stickers eval human add-annotator NAME... --db {db}; "
                   f"stickers eval human serve --db {db}; then rerun this command for the agreement")
        return
    summary = summary if min_votes == summary["min_votes"] else job_summary(store, job, candidates, min_votes)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "kept"}, indent=2))
        return
    a = summary["agreement"]
    typer.echo(f"job {job!r}: {summary['complete_items']}/{summary['items']} items fully rated; kept "
               f"{summary['kept_count']} of {summary['candidates']} (>= {min_votes} votes); per teacher "
               f"{summary['kept_per_teacher']}; per bucket {summary['kept_per_bucket']}; agreement: pairwise "
               f"{a['pairwise'] if a['pairwise'] is None else round(a['pairwise'], 3)}, Fleiss' kappa "
               f"{a['fleiss_kappa'] if a['fleiss_kappa'] is None else round(a['fleiss_kappa'], 3)}")


@app.command()
@one_line_errors
def finetune(candidates: Candidates, job: Job, out: Annotated[Path, typer.Option(help="student folder")],
             init: Annotated[Path, typer.Option(help="model folder the student starts from")], data: Data,
             db: Db = "sqlite:///hitl.sqlite", min_votes: int = 2,
             steps: Annotated[int | None, typer.Option(help="finetune steps (default 300)")] = None,
             max_steps: Annotated[int | None, typer.Option(help="stop after this many steps in this call")] = None,
             set_: Annotated[list[str], typer.Option("--set", help="override a stage field")] = [],
             banks: Annotated[Path | None, typer.Option(help="latent cache to share, e.g. TEACHERS/.banks (the "
                                                             "real data is not encoded again)")] = None) -> None:
    """Train the student on the kept candidates mixed with real data (resumable)."""
    from ..eval.human.cli import _existing_db
    from ..eval.human.store import Store
    from .finetune import finetune as run
    from .inputs import check_sqlite
    from .select import job_summary

    summary = job_summary(Store(check_sqlite(_existing_db(db))), job, candidates, min_votes)
    info = run(summary["kept"], candidates, out, data, init, steps, max_steps, set_, banks)
    typer.echo(f"student on {info['kept']} kept candidates ({info['prepared']} prepared): "
               f"{info['model'] or 'not finished (rerun to resume)'}")


@app.command()
@one_line_errors
def report(candidates: Candidates, job: Job,
           eval_prompts: Annotated[Path, typer.Option(help="held-out prompt set (`hitl prompts --split heldout`)")],
           out: Annotated[Path, typer.Option(help="the report file")] = Path("hitl-round-1.md"),
           round_no: Annotated[int, typer.Option("--round", help="round number")] = 1,
           db: Db = "sqlite:///hitl.sqlite", teachers: Annotated[Path | None, typer.Option()] = None,
           model: Annotated[list[str], typer.Option("--model", help="extra NAME=MODEL_DIR")] = [],
           student: Annotated[Path | None, typer.Option(help="folder made by `hitl finetune`")] = None,
           work: Annotated[Path | None, typer.Option(help="evaluation cache (default: OUT's folder/eval-<job>)")]
           = None,
           notes: Annotated[Path | None, typer.Option(help="Markdown file appended as the report's notes")] = None,
           min_votes: int = 2) -> None:
    """Write hitl-round-N.md: prompts, candidates, kept per bucket/teacher, held-out scores per model."""
    from ..errors import UserError
    from ..eval.human.cli import _existing_db
    from ..eval.human.store import Store
    from .finetune import STUDENT_FILE
    from .inputs import check_sqlite, read_json_file
    from .report import evaluate_model, write_report
    from .select import job_summary
    from .teachers import find_models

    selection = job_summary(Store(check_sqlite(_existing_db(db))), job, candidates, min_votes)
    models = find_models(teachers, model)
    student_name = None
    if student is not None:
        f = student / STUDENT_FILE
        if not f.is_file():
            raise UserError(f"--student {student}: no {STUDENT_FILE}; run `stickers hitl finetune` to the end first")
        student_name = "student"
        pointer = read_json_file(f, "the file written by `stickers hitl finetune`")
        if not isinstance(pointer.get("model"), str):
            raise UserError(f"'{f}': expected a 'model' folder, as written by `stickers hitl finetune`")
        models[student_name] = Path(pointer["model"])
    work = work or out.parent / f"eval-{job}"
    evals = {name: evaluate_model(name, path, eval_prompts, work) for name, path in models.items()}
    path = write_report(out, round_no, candidates, selection, evals, student_name,
                        notes.read_text(encoding="utf-8") if notes else "")
    typer.echo(f"wrote {path}")
