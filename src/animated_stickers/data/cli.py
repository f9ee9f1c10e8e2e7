"""`stickers data ...`: fetch sources, prepare shards, print stats, write bucket previews (thin wiring only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError, one_line_errors

app = typer.Typer(help="Training data: fetch sources, prepare WebDataset shards, stats, previews.",
                  no_args_is_help=True)

_SOURCES = ("fluent-anim", "fluent-3d", "fluent-flat", "fluent-high-contrast", "openmoji")


def _cache(cache: Path | None) -> Path:
    from .sources import default_cache

    return cache or default_cache()


def _parse_fps_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--bucket-fps '{text}': expected comma-separated numbers like 4,6,8,12") from None
    if not values or any(v <= 0 for v in values) or list(values) != sorted(values):
        raise UserError(f"--bucket-fps '{text}': expected ascending positive numbers like 4,6,8,12")
    return values


@app.command()
@one_line_errors
def fetch(
    cache: Annotated[Path | None, typer.Option(
        help="cache folder (default $STICKERS_CACHE or ~/.cache/animated-stickers)")] = None,
    test_sets: Annotated[bool, typer.Option(
        help="also fetch the unseen-style test sets (Twemoji, Noto) into CACHE/test-only (never trained on)")] = False,
) -> None:
    """Download the npm sources (Fluent animated + 3D emoji, emojibase-data) into the cache (idempotent)."""
    from .sources import NPM_PACKAGES, fetch_npm

    folder = _cache(cache)
    for path in fetch_npm(folder, progress=lambda p: typer.echo(f"ok {p}")):
        typer.echo(str(path))
    typer.echo(f"{len(NPM_PACKAGES)} packages in {folder}")
    if test_sets:
        from .test_sets import fetch_test_sets

        for path in fetch_test_sets(folder, progress=lambda p: typer.echo(f"ok {p} (test only)")):
            typer.echo(str(path))


@app.command("captions-table")
@one_line_errors
def captions_table(
    emojibase: Annotated[Path, typer.Argument(help="unpacked emojibase-data package folder")],
) -> None:
    """Rebuild the shipped CLDR label/keyword table (data/emoji_keywords.json.gz) from emojibase-data."""
    from .captions import build_keyword_table

    out = build_keyword_table(emojibase)
    typer.echo(f"wrote {out} ({out.stat().st_size} bytes)")


@app.command()
@one_line_errors
def prepare(
    out: Annotated[Path, typer.Argument(help="output folder for shards, manifest and buckets")],
    cache: Annotated[Path | None, typer.Option(help="npm cache folder with src/ (see `fetch`)")] = None,
    source: Annotated[list[str] | None, typer.Option(
        help="fluent-anim, or still styles fluent-3d, fluent-flat, openmoji, fluent-high-contrast (held out: "
             "evaluation only); repeatable. Default: fluent-anim, unless --videos or --procedural is given "
             "(then only what is named)")] = None,
    videos: Annotated[Path | None, typer.Option(help="a folder of your own animations/videos to add")] = None,
    videos_license: Annotated[str, typer.Option(help="license of --videos")] = "user-provided (license not checked)",
    procedural: Annotated[int, typer.Option(help="procedural animations per Fluent 3D still (0 = none)")] = 0,
    procedural_limit: Annotated[
        int | None, typer.Option(help="use this many stills (evenly spread) for --procedural")] = None,
    workers: Annotated[int, typer.Option(min=1, help="analysis processes")] = 1,
    shard_size: Annotated[int, typer.Option(min=1, help="samples per shard")] = 100,
    mv: Annotated[bool, typer.Option(help="also compute the H.264 motion-vector score")] = True,
    bucket_score: Annotated[str, typer.Option(help="score the buckets use: mv or frame_diff")] = "mv",
    bucket_fps: Annotated[str, typer.Option(help="ascending fps of the motion buckets")] = "4,6,8,12",
    bucket_table: Annotated[Path | None, typer.Option(
        help="JSON [[lower_score, fps], ...] instead of fitting")] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N items of each source (trials)")] = None,
    retry_errors: Annotated[bool, typer.Option(help="re-analyse files that failed before")] = False,
    motion_targets: Annotated[bool, typer.Option(
        help="also store each looping clip's motion target for the learned motion model: spectral volumes "
             "(motion/spectral.py, 64 px, 4 harmonics) relative to --motion-phases random conditioning "
             "phases")] = False,
    motion_phases: Annotated[int, typer.Option(min=1, max=16, help="conditioning phases per clip")] = 4,
) -> None:
    """Analyse sources, fit motion buckets and write WebDataset shards + manifest (resumable)."""
    from .shards import PrepareOptions
    from .shards import prepare as run_prepare
    from .sources import fluent_items, procedural_items, style_items, user_items

    if source is None:
        source = [] if (videos or procedural) else ["fluent-anim"]
    bad = [s for s in source if s not in _SOURCES]
    if bad:
        raise UserError(f"--source '{bad[0]}': expected one of {', '.join(_SOURCES)}")
    if bucket_score not in ("mv", "frame_diff"):
        raise UserError(f"--bucket-score '{bucket_score}': expected mv or frame_diff")
    if bucket_score == "mv" and not mv:
        raise UserError("--bucket-score mv needs the mv score: drop --no-mv or use --bucket-score frame_diff")
    table = None
    if bucket_table:
        try:
            table = [(float(lo), float(f)) for lo, f in json.loads(bucket_table.read_text())]
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"--bucket-table '{bucket_table}': expected JSON [[lower_score, fps], ...] ({e})") from None
    folder = _cache(cache)
    items = []
    if "fluent-anim" in source:
        items += fluent_items(folder, "animated")[:limit]
    still_styles = [s for s in source if s != "fluent-anim"]
    stills = []  # every named still style; --procedural alone animates Fluent 3D stills
    for style in still_styles or (["fluent-3d"] if procedural else []):
        stills += fluent_items(folder, "still") if style == "fluent-3d" else style_items(folder, style)
    if still_styles:
        items += stills[:limit]
    if procedural:
        chosen = stills[:: max(1, len(stills) // procedural_limit)][:procedural_limit] if procedural_limit else stills
        items += procedural_items(chosen, procedural)[:limit]  # an evenly spread subset, not just the first
    if videos:
        items += user_items(videos, videos_license)[:limit]
    opts = PrepareOptions(shard_size=shard_size, workers=workers, with_mv=mv, bucket_score=bucket_score,
                          bucket_fps=_parse_fps_list(bucket_fps), bucket_table=table,
                          motion_targets=motion_targets, motion_phases=motion_phases)
    report = run_prepare(items, out, opts)
    typer.echo(f"{report.ok} samples in {report.shards_written + report.shards_kept} shards under {out} "
               f"({report.shards_written} written, {report.shards_kept} unchanged); {report.skipped} skipped, "
               f"{report.errors} bad files; {report.seconds:.0f} s")
    for line in report.error_lines[:20]:
        typer.echo(f"bad file: {line}", err=True)


@app.command()
@one_line_errors
def stats(folder: Annotated[Path, typer.Argument(help="a folder made by `stickers data prepare`")],
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Counts, frames, fps, motion-score quantiles, buckets and caption coverage of prepared data."""
    from .stats import dataset_stats, format_stats

    s = dataset_stats(folder)
    typer.echo(json.dumps(s, indent=2, ensure_ascii=False) if as_json else format_stats(s))


@app.command()
@one_line_errors
def preview(folder: Annotated[Path, typer.Argument(help="a folder made by `stickers data prepare`")],
            out: Annotated[Path | None, typer.Option(help="where to write (default FOLDER/preview)")] = None,
            per_bucket: Annotated[int, typer.Option(min=1, help="clips shown per bucket")] = 6) -> None:
    """Write a contact sheet (PNG) and an animated grid (WebP) per motion bucket."""
    from .preview import write_previews

    if not (folder / "buckets.json").is_file():
        raise UserError(f"'{folder}': no buckets.json; expected a folder made by `stickers data prepare`")
    for path in write_previews(folder, out or folder / "preview", per_bucket=per_bucket):
        typer.echo(str(path))
