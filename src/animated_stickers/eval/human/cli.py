"""`stickers eval human ...`: serve the annotation app, import jobs, add annotators, print reports.

Workflow:
  stickers eval human import-job OUT_A --name eval-1 --model A --db eval.sqlite   # OUT_A: name.webp + prompts.json
  stickers eval human import-job OUT_B --name eval-1 --model B --db eval.sqlite   # same job: models interleaved
  stickers eval human add-annotator ann bob cem --db eval.sqlite                  # personal links (invite-only)
  stickers eval human serve --db eval.sqlite --host 0.0.0.0 --port 8000
  stickers eval human report --db eval.sqlite --job eval-1 [--compare A B] [--json]
HITL filtering: `import-job DIR --kind hitl --name pick-1` with DIR/<teacher>/<stem>.webp + DIR/prompts.json;
`report --job pick-1` lists the candidates chosen by at least --min-votes annotators.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer

from ...errors import UserError
from ...errors import one_line_errors as _one_line_errors
from .store import DEFAULT_DB, EVAL, HITL, Store, StoreInputError


def one_line_errors(fn):
    """The package's one-line errors, with the store's domain errors worded as this CLI's flags."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StoreInputError as e:
            raise UserError(f"--{e.field} {e.detail}") from None

    return _one_line_errors(wrapped)

app = typer.Typer(help="Human evaluation (paper 4.1) and HITL filtering: web app, jobs, consensus reports.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

Db = Annotated[str, typer.Option(help="database: a SQLAlchemy URL (sqlite:///eval.sqlite, "
                                      "postgresql+psycopg://...) or a SQLite file path")]


@app.command()
@one_line_errors
def serve(db: Db = DEFAULT_DB, host: str = "127.0.0.1", port: int = 8000,
          signup: Annotated[bool, typer.Option(help="opt-in: let anyone who reaches the page sign up by name "
                                                    "(default: invite-only, via add-annotator)")] = False,
          ) -> None:
    """Run the annotation web app (invite-only unless --signup)."""
    from .app import serve as run

    run(db, host=host, port=port, signup=signup)


@app.command("import-job")
@one_line_errors
def import_job(folder: Annotated[Path, typer.Argument(help="animations named by image stem + prompts.json")],
               name: Annotated[str, typer.Option(help="job name (an existing job gets the new items)")],
               model: Annotated[str, typer.Option(help="model that made the animations (eval jobs)")] = "",
               kind: Annotated[str, typer.Option(help="eval (one sticker per item) or hitl "
                                                      "(FOLDER/<model>/<stem>.*)")] = EVAL,
               prompts: Annotated[Path | None, typer.Option(help="prompts.json if not FOLDER/prompts.json")] = None,
               annotators: Annotated[int, typer.Option(min=1, help="annotators per item (new jobs)")] = 3,
               db: Db = DEFAULT_DB) -> None:
    """Add a folder of generated animations to a job."""
    from .importer import scan_eval, scan_hitl

    if kind == EVAL:
        if not model:
            raise UserError("--model is required for an eval job; expected the name of the model that made FOLDER")
        items = scan_eval(folder, model, prompts)
    elif kind == HITL:
        items = scan_hitl(folder, prompts)
    else:
        raise UserError(f"--kind {kind}: expected 'eval' or 'hitl'")
    job_id = Store(db).add_items(name, kind, items, annotators_per_item=annotators)
    n_files = sum(len(i.candidates) for i in items)
    typer.echo(f"job {name!r} (id {job_id}, {kind}): added {len(items)} items, {n_files} files")


@app.command("add-annotator")
@one_line_errors
def add_annotator(names: Annotated[list[str], typer.Argument(help="annotator names")], db: Db = DEFAULT_DB,
                  url: Annotated[str, typer.Option(help="server address for the links")] = "http://127.0.0.1:8000",
                  ) -> None:
    """Create annotators and print name, token and personal link, one per line."""

    store = Store(db)
    for n in names:
        try:
            a = store.create_annotator(n)
        except StoreInputError as e:
            raise UserError(f"annotator {n!r}: {e}") from None
        typer.echo(f"{a['name']}\t{a['token']}\t{url.rstrip('/')}/?token={a['token']}")


@app.command("release-stale")
@one_line_errors
def release_stale(job: Annotated[str, typer.Option(help="job name")],
                  hours: Annotated[float, typer.Option(min=0, help="release items opened longer ago")] = 24.0,
                  db: Db = DEFAULT_DB) -> None:
    """Give items that annotators opened but never submitted back to the pool."""
    from datetime import timedelta

    n = Store(_existing_db(db)).release_stale(job, timedelta(hours=hours))
    typer.echo(f"job {job!r}: released {n} open assignments older than {hours:g} h")


@app.command()
@one_line_errors
def report(db: Db = DEFAULT_DB,
           job: Annotated[str | None, typer.Option(help="only this job (default: all eval jobs)")] = None,
           compare: Annotated[tuple[str, str] | None,
                              typer.Option(help="two model names: Table 2 side by side")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of Markdown")] = False,
           min_votes: Annotated[int, typer.Option(help="HITL jobs: votes a candidate needs to be kept")] = 2,
           ) -> None:
    """Consensus count and pass rate per criterion (paper Table 1), or two models side by side (Table 2)."""
    from .report import build_report, hitl_summary, render_markdown

    store = Store(_existing_db(db))
    if job is not None and store.job_by_name(job)["kind"] == HITL:
        summary = hitl_summary(store, job, min_votes)
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        else:
            typer.echo(f"HITL job {job!r}: {summary['items']} items ({summary['complete_items']} fully annotated), "
                       f"{len(summary['kept'])} candidates chosen by >= {min_votes} annotators; per model: "
                       f"{summary['kept_per_model']}")
        return
    pair = tuple(compare) if compare and None not in compare else None
    data = build_report(store, job, pair)
    typer.echo(json.dumps(data, indent=2) if as_json else render_markdown(data), nl=not as_json)


def _existing_db(db: str) -> str:
    """Reports never create a database: a missing SQLite file is an error, not an empty report."""
    if "://" not in db or db.startswith("sqlite:///"):
        path = Path(db.removeprefix("sqlite:///"))
        if not path.is_file():
            raise UserError(f"--db {db}: no such database file; expected the file given to `serve`/`import-job`")
    return db


if __name__ == "__main__":
    app()
