"""The model's animations of real held-out clips (input = the clip's middle frame), for `eval auto --model`.

Writes a folder pair `inputs/` (PNG stills + prompts.json) and `outputs/` (one WebP per input) that
`stickers eval auto --inputs --outputs` (and the human evaluation) can judge again later.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from ..atomic import atomic_write_text
from ..errors import UserError
from .realclips import RealClip, fluent_files, load_real_clips, prompt_for


def _save_animation(frames: list[Image.Image], path: Path, fps: float = 8.0) -> Path:
    """Lossless looping WebP, written atomically by the export area."""
    from ..export.formats import write_animation

    return write_animation(frames, path, fps=fps, lossless=True)


def real_clips(
    split: str,
    limit: int | None,
    size: int,
    pattern: str | None = None,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[RealClip]:
    """Up to `limit` animated clips of `split` (stills skipped), at `size` px."""
    files = fluent_files(pattern, split=split) if pattern else fluent_files(split=split)
    clips = load_real_clips(files, limit, size, progress)
    if not clips:
        raise UserError(
            f"no animated Fluent clips found for split '{split}' (expected files under the npm cache)"
        )
    return clips


def animate_clips(
    model_dir: Path | None,
    clips: list[RealClip],
    work_dir: Path,
    batch_size: int = 4,
    progress: Callable[[Iterable], Iterable] = iter,
) -> tuple[Path, Path]:
    """Animate each clip's middle frame with the emoji's name alone; returns (inputs_dir, outputs_dir)."""
    try:
        from ..sampling.pipeline import AnimatePipeline
    except ModuleNotFoundError:
        raise UserError(
            "the sampling pipeline (animated_stickers.sampling.pipeline) is not installed yet"
        ) from None
    pipe = AnimatePipeline.from_dir(model_dir)
    inputs, outputs = work_dir / "inputs", work_dir / "outputs"
    inputs.mkdir(parents=True, exist_ok=True)
    outputs.mkdir(parents=True, exist_ok=True)
    entries = []
    for rc in clips:
        Image.fromarray(rc.image).save(inputs / f"{rc.stem}.png")
        entries.append({"image": f"{rc.stem}.png", "prompt": prompt_for(rc.stem)})
    atomic_write_text(inputs / "prompts.json", json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    batches = [list(range(i, min(i + batch_size, len(clips)))) for i in range(0, len(clips), batch_size)]
    for batch in progress(batches):
        images = [Image.fromarray(clips[i].image) for i in batch]
        videos = pipe.animate(images, [entries[i]["prompt"] for i in batch])
        for i, frames in zip(batch, videos):
            _save_animation([f.convert("RGBA") for f in frames], outputs / f"{clips[i].stem}.webp")
    return inputs, outputs


def real_animations(clips: list[RealClip], pattern: str | None = None) -> dict:
    """stem -> the artist's whole animation (frames + frame rate): the reference for generated motion."""
    from ..data.animation import read_animation

    paths = {p.stem: p for p in (fluent_files(pattern, split=None) if pattern else fluent_files(split=None))}
    return {rc.stem: read_animation(paths[rc.stem]) for rc in clips}
