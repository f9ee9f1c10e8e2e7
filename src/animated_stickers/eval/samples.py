"""The model's animations of real held-out clips (input = the clip's middle frame), for `eval auto --model` /
`--motion-model`.

Writes a folder pair `inputs/` (PNG stills + prompts.json) and `outputs/` (one WebP per input) that
`stickers eval auto --inputs --outputs` (and the human evaluation) can judge again later.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from ..atomic import atomic_write_text
from ..errors import UserError
from .realclips import RealClip, fluent_files, load_real_clips, prompt_for


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
    pipe,
    clips: list[RealClip],
    work_dir: Path,
    batch_size: int = 4,
    progress: Callable[[Iterable], Iterable] = iter,
) -> tuple[Path, Path]:
    """Animate each clip's middle frame with the emoji's name alone on `pipe`, either path
    (sampling/paths.open_pipeline), at its defaults: the path's loop and frame rate (motion: 48 frames at 24
    fps, the still frame 0; video: 8 at 8). Each output is lossless WebP with a sidecar recording its loop,
    so the judge reads the conditioning frame (resume.recorded_loop). Returns (inputs_dir, outputs_dir)."""
    from ..config import PATH_FPS
    from ..export.formats import write_animation
    from ..sampling.onnx_pipeline import weights_digest
    from ..sampling.params import with_loop
    from ..sampling.resume import mark_made, record

    fps = PATH_FPS[pipe.path]
    params = with_loop(pipe.sampling, pipe.path, fps)
    frames, cond = pipe.layout(params)
    digest = weights_digest(Path(pipe.source)) if pipe.source else ""
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
        videos = pipe.animate(images, [entries[i]["prompt"] for i in batch], params)
        for j, (i, seq) in enumerate(zip(batch, videos)):
            out = write_animation([f.convert("RGBA") for f in seq], outputs / f"{clips[i].stem}.webp", fps=fps,
                                  lossless=True)
            own = dataclasses.replace(params, seed=params.seed + j)  # sticker j of the call's seed
            made = record(inputs / entries[i]["image"], entries[i]["prompt"], own, {"path": pipe.path, "fps": fps},
                          digest)
            mark_made(out, made, {"path": pipe.path, "frames": frames, "fps": fps, "cond_index": cond})
    return inputs, outputs


def real_animations(clips: list[RealClip], pattern: str | None = None) -> dict:
    """stem -> the artist's whole animation (frames + frame rate): the reference for generated motion."""
    from ..data.animation import read_animation

    paths = {p.stem: p for p in (fluent_files(pattern, split=None) if pattern else fluent_files(split=None))}
    return {rc.stem: read_animation(paths[rc.stem]) for rc in clips}
