"""Load what the service runs: the animation pipeline (required) and a text-to-image one (optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.checkpoint import DEFAULT_MODEL_DIR

DEFAULT_T2I_DIR = DEFAULT_MODEL_DIR.parent / "tiny-t2i"


def load_pipeline(model_dir: Path | None, random_tiny: bool = False, path: str = "video",
                  motion_model: Path | None = None) -> Any:
    """The pipeline of generation `path`: the MotionPipeline of a motion model folder (default weights/motion),
    else the AnimatePipeline of a video model folder (default weights/tiny) or a random tiny model."""
    from ..sampling.paths import open_pipeline

    if random_tiny and path != "motion":
        from ..config import model_config
        from ..models.checkpoint import StickerModel
        from ..sampling.pipeline import AnimatePipeline

        return AnimatePipeline(StickerModel.create(model_config("tiny")).eval())
    return open_pipeline(path, model_dir, motion_model)


def load_generator(t2i_dir: Path | None, random_tiny: bool = False) -> Any | None:
    """A TextToImagePipeline from `t2i_dir`, else from weights/tiny-t2i if present, else None."""
    from ..sampling.pipeline import TextToImagePipeline

    if random_tiny:
        from ..config import model_config
        from ..models.checkpoint import StickerModel

        return TextToImagePipeline(StickerModel.create(model_config("tiny"), video=False).eval())
    if t2i_dir is None and not (DEFAULT_T2I_DIR / "config.json").is_file():
        return None
    return TextToImagePipeline.from_dir(t2i_dir)
