"""`stickers eval ...`: automatic judges (auto, calibrate); the human evaluation app mounts as `human`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from tqdm import tqdm

from ..errors import UserError, one_line_errors

app = typer.Typer(
    help="Evaluate animated stickers: automatic measures and human evaluation.", no_args_is_help=True
)

try:
    from .human.cli import app as human_app

    app.add_typer(human_app, name="human")
except ModuleNotFoundError:
    pass


def _bar(desc: str):
    """A progress wrapper writing to stderr (stdout stays clean for --json)."""
    return lambda it: tqdm(it, desc=desc, file=sys.stderr, leave=False)


@app.command()
@one_line_errors
def auto(
    inputs: Path | None = typer.Option(None, help="Folder of sticker images + prompts.json."),
    outputs: Path | None = typer.Option(None, help="Folder with one animation per input, named by its stem."),
    model: Path | None = typer.Option(
        None, help="Model folder: generate for real held-out clips, then judge."
    ),
    split: str = typer.Option(
        "heldout", help="With --model: which split of the Fluent clips (heldout|train|all)."
    ),
    limit: int | None = typer.Option(None, min=1, help="With --model: at most this many clips."),
    assets: str | None = typer.Option(
        None, help="With --model: glob of real animated WebPs (default: Fluent)."
    ),
    real: Path | None = typer.Option(None, help="Folder of real animations named by stem, for motion stats."),
    report: Path | None = typer.Option(None, help="Where to write per_sticker.jsonl + summary.{json,md}."),
    thresholds: Path | None = typer.Option(None, help="Thresholds JSON (default: the calibrated one)."),
    batch_size: int = typer.Option(4, min=1, help="With --model: stickers per sampling call."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary JSON on stdout."),
) -> None:
    """Judge generated animations with the automatic measures (pass rate per criterion)."""
    from .auto import judge_folder, motion_stats_summary, summarise
    from .report import dumps, summary_markdown, write_results
    from .thresholds import load_thresholds

    th = load_thresholds(thresholds)
    real_frames = None
    if model is not None:
        if inputs is not None or outputs is not None:
            raise UserError(
                "--model generates its own inputs/outputs: give either --model or --inputs/--outputs"
            )
        if split not in ("heldout", "train", "all"):
            raise UserError(f"--split '{split}': expected heldout, train or all")
        from .generate import generate_for_clips, real_clips
        from .generate import real_frames as clip_frames

        report = report or Path(f"eval-auto-{model.name or 'model'}-{split}")
        clips = real_clips(
            split, limit, size=_model_resolution(model), pattern=assets, progress=_bar("clips")
        )
        inputs, outputs = generate_for_clips(model, clips, report, batch_size, progress=_bar("generate"))
        real_frames = clip_frames(clips)
    elif inputs is None or outputs is None:
        raise UserError("give --inputs DIR and --outputs DIR (or --model DIR to generate first)")
    elif real is not None:
        real_frames = _read_real_folder(real)
    report = report or outputs / "eval"
    results = judge_folder(inputs, outputs, th, real=real_frames, progress=_bar("judge"))
    summary = summarise(results, th)
    summary["thresholds_source"] = str(thresholds or "package default") + ": " + th["existence"].source
    rows = [{"stem": r.stem, **r.extra["vs_real"]} for r in results if "vs_real" in r.extra]
    if real_frames is not None:
        summary["vs_real"] = motion_stats_summary(rows)
    paths = write_results(report, [r.to_json() for r in results], summary)
    if json_out:
        print(dumps(summary))
    else:
        print(summary_markdown(summary))
        print(f"wrote {paths['jsonl']}, {paths['json']}, {paths['md']}", file=sys.stderr)


def _model_resolution(model: Path) -> int:
    """The canvas size the model works at (its config), 128 when unknown."""
    from ..models.checkpoint import ModelLoadError, read_config

    try:
        return int(read_config(model).get("model", {}).get("resolution", 128))
    except (ModelLoadError, AttributeError, TypeError, ValueError):  # the pipeline reports a bad folder
        return 128


def _read_real_folder(folder: Path) -> dict:
    """stem -> frames for every readable animation in `folder`."""
    from ..data.animation import read_animation
    from .auto import OUTPUT_SUFFIXES

    if not folder.is_dir():
        raise UserError(f"'{folder}': real-animations folder not found")
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in OUTPUT_SUFFIXES and p.stem not in out:
            out[p.stem] = read_animation(p).frames
    return out


@app.command()
@one_line_errors
def calibrate(
    out: Path = typer.Option(
        Path("eval-calibration"), help="Folder for calibration.{md,json} + thresholds.json."
    ),
    split: str = typer.Option("heldout", help="Which split of the Fluent clips (heldout|train|all)."),
    limit: int | None = typer.Option(None, min=1, help="At most this many animated clips."),
    assets: str | None = typer.Option(None, help="Glob of Fluent animated WebPs (default: the npm cache)."),
    install: bool = typer.Option(False, help="Also make these the package's default thresholds."),
) -> None:
    """Run every measure on real held-out clips and broken versions; fit and report thresholds."""
    from .calibrate import run_calibration
    from .realclips import default_fluent_glob, fluent_files
    from .report import write_text_atomic
    from .thresholds import THRESHOLDS_FILE

    if split not in ("heldout", "train", "all"):
        raise UserError(f"--split '{split}': expected heldout, train or all")
    files = fluent_files(assets or default_fluent_glob(), split=split)
    if not files:
        raise UserError(f"no Fluent WebPs match '{assets or default_fluent_glob()}' in split '{split}'")
    try:
        result = run_calibration(out, files, split, limit=limit, progress=_bar("calibrate"))
    except ValueError as e:
        raise UserError(f"'{assets or default_fluent_glob()}': {e}") from None
    print(result["markdown"])
    if install:
        write_text_atomic(THRESHOLDS_FILE, (out / "thresholds.json").read_text())
        print(f"installed thresholds into {THRESHOLDS_FILE}", file=sys.stderr)
