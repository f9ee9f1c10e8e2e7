"""`stickers export IN --preset telegram|whatsapp|gif|... --out OUT`: messenger-ready files from any animation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..errors import UserError, one_line_errors
from .formats import read_frames
from .presets import PRESETS, export_preset, get_preset
from .retime import RETIME_MODES, check_fps

_PRESET_HELP = "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values())


def pick_frames(frames: list, fps: float, count: int) -> tuple[list, float]:
    """`count` frames evenly spaced over the loop, with the fps that keeps the loop length."""
    if count < 1:
        raise UserError(f"--frames {count}: expected at least 1")
    if count >= len(frames):
        return frames, fps
    idx = np.floor(np.arange(count) * len(frames) / count).astype(int)
    return [frames[i] for i in idx], fps * count / len(frames)


@one_line_errors
def export_command(
    src: Annotated[Path, typer.Argument(help="Animation to export: WebP/GIF/APNG/WebM/MP4, with or without alpha.")],
    preset: Annotated[str, typer.Option("--preset", "-p", help=f"Target. {_PRESET_HELP}")] = "telegram",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: IN.<preset>.<ext> beside IN).")]
    = None,
    fps: Annotated[float | None, typer.Option(help="Play the input frames at this rate (default: the file's rate).")]
    = None,
    frames: Annotated[int | None, typer.Option(help="Keep this many evenly spaced frames (same loop length).")] = None,
    retime_mode: Annotated[str, typer.Option("--retime", help=f"How to add frames up to the preset fps: "
                                             f"{', '.join(RETIME_MODES)} (flow: motion-compensated; blend: "
                                             "cross-fade; hold: none).")] = "flow",
    pingpong: Annotated[bool, typer.Option("--pingpong", help="Play forwards then backwards. NOT a real loop: the "
                                           "motion reverses at both ends; only for clips that do not loop.")] = False,
    cond_frame: Annotated[int | None, typer.Option(help="Conditioning frame index (0 to frames - 1; default the "
                                                        "middle frame, 3 of 8 or 7 of 16, as `stickers animate` "
                                                        "conditions): the still for static "
                                                        "presets; shown first where a preset asks for it "
                                                        "(WhatsApp).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the export report as JSON.")] = False,
) -> None:
    """Export an animation for a messenger: fitted, retimed, within the size budget, verified on disk."""
    target = get_preset(preset)
    seq, file_fps = read_frames(src)
    rate = check_fps(fps, "--fps") if fps is not None else file_fps
    if rate <= 0:
        if target.animated:
            raise UserError(f"'{src}': a still image; preset {target.name} needs an animation (or pass --fps)")
        rate = 1.0
    if frames is not None:
        seq, rate = pick_frames(seq, rate, frames)
    if cond_frame is not None and not 0 <= cond_frame < len(seq):
        raise UserError(f"--cond-frame {cond_frame}: expected 0 to {len(seq) - 1} ('{src}' has {len(seq)} frames)")
    if out is not None and out.is_dir():
        raise UserError(f"--out '{out}' is a folder: expected an output file name, e.g. {out / src.stem}"
                        f"{target.suffix}")
    out = out or src.with_name(f"{src.stem}.{target.name}{target.suffix}")
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(f"exporting {src.name} for {target.name}") as status:
        report = export_preset(seq, rate, target, out, retime_mode=retime_mode, pingpong=pingpong,
                               cond_frame=cond_frame,
                               progress=lambda msg: status.update(f"encoding {msg}"))
    print(json.dumps(report.to_dict()) if as_json else report.summary())


def register(app: typer.Typer) -> None:
    """Add `stickers export` to the top-level app."""
    app.command("export")(export_command)
