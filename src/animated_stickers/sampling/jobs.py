"""What `stickers animate` has to do: (image, prompt, output) jobs, all checked before any sampling.

Two forms: images on the command line (one output file, or a folder when there are several), or an
input folder with a prompts.json (a list of {"image", "prompt"}) and an output folder, one animation
per image named by its stem. Every image is opened and keyed here (check_jobs), so a bad input fails
in one line before the model is even loaded; it is fitted on the model's canvas after (prepare_jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..checks import check_prompt, prepare_output_file
from ..errors import UserError
from ..export.formats import format_of
from ..prompts_file import PROMPTS_FILE, read_prompts_file
from .preprocess import Sticker, load_image, prepare_sticker, to_rgba


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


@dataclass
class CheckedJob:
    """One job whose image is decoded and keyed, and whose prompt and output are checked: no model needed."""

    image: Path
    rgba: Image.Image
    prompt: str
    out: Path
    stem: str


def check_jobs(images: list[Path], prompts: list[str], out: Path | None, inputs: Path | None,
               outputs: Path | None, fmt: str, preset: str | None = None) -> list[CheckedJob]:
    """Check every input and output, and read and key every image; raises UserError on the first problem.
    Needs no model, so it runs before one is loaded."""
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
    return [CheckedJob(p, to_rgba(load_image(p), str(p)), t, o, stem)
            for p, t, o, stem in zip(paths, texts, outs, stems)]


def prepare_jobs(checked: list[CheckedJob], canvas: int) -> list[AnimateJob]:
    """Each checked sticker fitted on the model's canvas."""
    return [AnimateJob(prepare_sticker(j.rgba, str(j.image), canvas, key=False), j.prompt, j.out, j.stem)
            for j in checked]


def plan_jobs(images: list[Path], prompts: list[str], out: Path | None, inputs: Path | None,
              outputs: Path | None, fmt: str, canvas: int, preset: str | None = None) -> list[AnimateJob]:
    """check_jobs, then prepare_jobs for a model canvas of `canvas` px."""
    return prepare_jobs(check_jobs(images, prompts, out, inputs, outputs, fmt, preset), canvas)
