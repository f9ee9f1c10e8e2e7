"""What `stickers animate` has to do: (image, prompt, output) jobs, all checked before any sampling.

Two forms: images on the command line (one output file, or a folder when there are several), or an
input folder with a prompts.json (a list of {"image", "prompt"}) and an output folder, one animation
per image named by its stem. Every image is opened, keyed and fitted here, so a bad input fails in
one line before the model is even loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..checks import check_prompt, prepare_output_file
from ..errors import UserError
from ..export.formats import format_of
from ..prompts_file import PROMPTS_FILE, read_prompts_file
from .preprocess import Sticker, load_image, prepare_sticker


@dataclass
class AnimateJob:
    """One sticker to animate and where its results go."""

    sticker: Sticker
    prompt: str
    out: Path
    stem: str


def check_out_file(path: Path, preset: str | None) -> Path:
    """`path` ready to receive an output file (known suffix; its folder made if missing), or UserError."""
    if preset is None:
        format_of(path)  # UserError for an unsupported suffix, before any work
    return prepare_output_file(path)


def _out_folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UserError(f"output '{path}' is a file: with several images, expected a folder")
    return path  # made by the caller when writing starts (and removed again if the run fails)


def _unique_stems(paths: list[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    seen: set[str] = set()
    for s in stems:
        if s in seen:
            raise UserError(f"two inputs are named '{s}': expected distinct file names (outputs are named by stem)")
        seen.add(s)
    return stems


def _prompts_for(images: list[Path], prompts: list[str]) -> list[str]:
    if not prompts:
        raise UserError("no --prompt given: expected a short description of the motion")
    if len(prompts) == 1:
        return prompts * len(images)
    if len(prompts) != len(images):
        raise UserError(f"{len(prompts)} prompts for {len(images)} images: expected one, or one per image")
    return prompts


def plan_jobs(images: list[Path], prompts: list[str], out: Path | None, inputs: Path | None,
              outputs: Path | None, fmt: str, canvas: int, preset: str | None = None) -> list[AnimateJob]:
    """Check every input and output and prepare every sticker; raises UserError on the first problem."""
    suffix = "." + fmt.lower().lstrip(".")
    if inputs is not None or outputs is not None:
        if images or out is not None:
            raise UserError("give either IMAGE... with --out, or --inputs DIR with --outputs DIR, not both")
        if inputs is None or outputs is None:
            raise UserError("--inputs and --outputs go together: expected both folders")
        entries = read_prompts_file(inputs / PROMPTS_FILE)
        paths, texts = [e.image for e in entries], [e.prompt for e in entries]
    else:
        if not images:
            raise UserError("no images given: expected IMAGE... (or --inputs DIR --outputs DIR)")
        if out is None:
            raise UserError("no --out given: expected an output file (e.g. out.webp), or a folder for several images")
        paths, texts = images, _prompts_for(images, prompts)
    stems = _unique_stems(paths)
    texts = [check_prompt(t, f"prompt for '{p.name}'") for p, t in zip(paths, texts)]
    if preset is None:
        format_of(Path("x" + suffix))
    if inputs is None and len(paths) == 1:
        outs = [check_out_file(out, preset)]
    else:
        folder = _out_folder(outputs if inputs is not None else out)
        outs = [folder / (s + suffix) for s in stems]
    stickers = [prepare_sticker(load_image(p), str(p), canvas) for p in paths]
    return [AnimateJob(s, t, o, stem) for s, t, o, stem in zip(stickers, texts, outs, stems)]
