"""Which generation path a call runs (config.PATHS): the learned motion model or the latent video model.

Torch-free, so a cold `stickers animate` on a compiled model still imports no torch (`open_pipeline` imports
what the chosen path needs).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import DEFAULT_MOTION_DIR, PATHS
from ..errors import UserError


def bundled_motion_model() -> Path | None:
    """The default motion model folder (weights/motion) when it holds a model, else None."""
    return DEFAULT_MOTION_DIR if (DEFAULT_MOTION_DIR / "config.json").is_file() else None


def choose_path(path: str | None, model: Path | None, motion_model: Path | None) -> tuple[str, str | None]:
    """(the generation path of a call, a note to print once its pipeline loaded, or None). `path` given: that
    one. Else: a --motion-model means motion, a --model (a video model) means video, and otherwise the motion
    path when the default motion model exists, the video path with a note when it does not (until the motion
    model is bundled)."""
    if path is not None and path not in PATHS:
        raise UserError(f"--path '{path}': expected one of {', '.join(PATHS)}")
    if path is None and model is not None and motion_model is not None:
        raise UserError("--model (a video model) and --motion-model (a motion model) given: expected --path motion "
                        "or --path video to say which path runs")
    if path == "motion" and model is not None:
        raise UserError(f"--model '{model}' is a video model, used by --path video: the motion path takes "
                        "--motion-model DIR")
    if path == "video" and motion_model is not None:
        raise UserError(f"--motion-model '{motion_model}' is used by the motion path: --path video takes --model DIR")
    if path is not None:
        return path, None
    if motion_model is not None or (model is None and bundled_motion_model() is not None):
        return "motion", None
    if model is not None:
        return "video", None
    return "video", (f"note: no motion model in '{DEFAULT_MOTION_DIR}': using the paper's latent video path "
                     "(--path video; --motion-model DIR for the motion path)")


def folder_path(folder: Path) -> str:
    """The generation path a model folder serves: "motion" for a motion model (config.json "kind": "motion",
    models/motion_net.KIND), else "video" (whose loader words a broken folder)."""
    try:
        meta = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return "video"
    return "motion" if isinstance(meta, dict) and meta.get("kind") == "motion" else "video"


def open_pipeline(path: str, model: Path | None = None, motion_model: Path | None = None, engine: str = "auto",
                  threads: int | None = None):
    """The pipeline of generation `path` for the commands that need no compiled video engine (eval, hitl,
    serve): MotionPipeline of `motion_model` (default weights/motion) on `engine`, else AnimatePipeline of
    `model` (default weights/tiny). Both have one face: animate, animate_stickers, sampling, layout, resolution."""
    if path == "motion":
        from .motion_pipeline import MotionPipeline

        return MotionPipeline.from_dir(motion_model or DEFAULT_MOTION_DIR, engine, threads)
    from .pipeline import AnimatePipeline

    return AnimatePipeline.from_dir(model)
