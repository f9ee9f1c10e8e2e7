"""The motion path (issue 28): stickers + prompts + seeds -> looping frames moved by the learned motion model.

MotionPipeline.animate_stickers, step by step (the same face as pipeline.AnimatePipeline, so `stickers
animate`, `generate` and the HTTP service run either):
1. the stickers come prepared as for the video path (preprocess.py: checks, keying of a plain background);
2. per sticker i, its spectral volume from (sticker, prompt, seed + i), all stickers of the call in one batch
   (motion_onnx.MotionEngine.volumes: IP2P dual guidance over the still and the prompt's text encoding, on
   the compiled ONNX engine or torch, with one seed -> noise rule, so a seed moves a sticker the same on
   both). The text encoder is the only way the prompt reaches the motion: nothing here parses it (no
   motion/words.py, no prompt_motion.py);
3. the sticker at its own size moved along that volume, one 8-bit frame at a time (motion_model.
   render_frames): every pixel is the sticker's own, the loop closes by construction, and frame `cond`
   (0 by default: config.cond_index_for) is the sticker's own bytes;
4. with `motion_preset`, a rigid move chosen by name (motion/procedural.py: bounce, slide, spin, ...) laid
   over the generated motion in the same resampling; with `room` the sticker is drawn smaller so the move
   keeps its size (procedural.place_components, the rule the video path's prompt motion uses).
The loop's length comes in as `frames` (params.with_loop: fps x seconds, 48 by default); frame rate and
file format come at export, as on the video path. Torch is imported only by the torch engine, so a compiled
model animates without it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DEFAULT_MOTION_DIR, PATH_FPS, ConfigError, SamplingConfig, from_dict, to_dict
from ..errors import UserError
from ..motion.procedural import alpha_box, place_components, preset_components, source_coords
from .motion_model import Rigid, render_frames, still_square
from .motion_onnx import MotionEngine, TorchMotionEngine, load_motion_engine
from .params import check_call, check_loop_budget, draws_smaller, motion_layout
from .preprocess import Sticker, prepare_sticker

Progress = Callable[[int, int], None]
# The motion path's settings when a model folder names none (config.json "sampling"): motion_volume's own
# sampler defaults, and no prompt table (prompt_motion is the video path's).
MOTION_DEFAULTS = SamplingConfig(steps=20, image_guidance=1.0, text_guidance=1.0, guided_steps=20,
                                 prompt_motion=False)


class MotionPipeline:
    """Animate stickers with a motion model's engine; see the module docstring for the steps."""

    path = "motion"

    def __init__(self, engine: MotionEngine, sampling: SamplingConfig | None = None, name: str = "motion") -> None:
        self.engine, self.name, self.source = engine, name, engine.source
        self.sampling = sampling or MOTION_DEFAULTS

    @property
    def stats(self) -> dict[str, float]:
        return self.engine.stats  # the last call's text / network seconds and network evaluations

    @classmethod
    def from_dir(cls, folder: str | Path | None = None, engine: str = "auto", threads: int | None = None
                 ) -> MotionPipeline:
        """Load a motion model folder (None: the default weights/motion) on `engine` (motion_onnx.
        load_motion_engine: auto, onnx, torch); one error line when it is missing or broken (the torch engine
        checks config, names, shapes, finiteness; a compile is run only when its digests match the folder)."""
        folder = Path(folder) if folder is not None else DEFAULT_MOTION_DIR
        loaded = load_motion_engine(folder, engine, threads)
        if isinstance(loaded, TorchMotionEngine):
            from .optimize import set_threads  # imports torch: the torch engine's only

            set_threads(threads)
        meta = json.loads((folder / "config.json").read_text())  # read and checked by the engine already
        return cls(loaded, _folder_sampling(folder, meta), str(meta.get("config", {}).get("name", "motion")))

    # The same face as AnimatePipeline: default settings, canvas and loop layout.
    @property
    def resolution(self) -> int:
        return self.engine.spec.still_size

    def layout(self, params: SamplingConfig, fps: float | None = None) -> tuple[int, int]:
        return motion_layout(params, fps)

    def describe(self) -> dict:
        """What /v1/info shows of the model."""
        return {"name": self.name, "resolution": self.resolution, "num_frames": self.layout(self.sampling)[0],
                "stage": "motion", "path": self.path}

    # ------------------------------------------------------------------ public
    def animate(self, images: list[Image.Image], prompts: list[str], params: SamplingConfig | None = None,
                progress: Progress | None = None) -> list[list[Image.Image]]:
        """One call: per input, its loop's RGBA frames at the input's own size and aspect."""
        names = [getattr(im, "filename", "") or f"#{i + 1}" for i, im in enumerate(images)]
        return self.animate_stickers([prepare_sticker(im, n, self.resolution) for im, n in zip(images, names)],
                                     prompts, params, progress)

    def animate_stickers(self, stickers: list[Sticker], prompts: list[str], params: SamplingConfig | None = None,
                         progress: Progress | None = None) -> list[list[Image.Image]]:
        """Like `animate` for already prepared stickers (preprocess.prepare_sticker)."""
        prompts, params = check_call(prompts, params or self.sampling, len(stickers))
        frames, cond = self.layout(params)
        check_loop_budget(frames, [s.rgba.size for s in stickers])
        stills = [np.asarray(s.rgba.convert("RGBA")) for s in stickers]  # (H, W, 4) uint8, the stickers' own
        volumes = self.engine.volumes(stills, prompts, [params.seed + i for i in range(len(stills))], params.steps,
                                      params.image_guidance, params.text_guidance)  # (4K, s, s) canvas units each
        out = []
        for i, (still, volume) in enumerate(zip(stills, volumes)):
            move = preset_move(params, still, frames, cond)
            out.append([Image.fromarray(f, "RGBA") for f in render_frames(still, volume, frames, cond, move)])
            if progress is not None:
                progress(params.steps * (i + 1) // len(stickers), params.steps)
        return out


def preset_move(params: SamplingConfig, still: np.ndarray, frames: int, cond: int) -> Rigid | None:
    """The rigid move `params.motion_preset` names, fitted to the still (H, W, 4) uint8 on its square, as
    motion_model.Rigid (None without a preset). It runs about 1 Hz in whole cycles per loop (the loop lasts
    `seconds`, set by params.with_loop; with `frames` given, frames / 24 fps); with `room` the sticker is drawn
    smaller so the move keeps its size."""
    if params.motion_preset is None:
        return None
    alpha = still_square(still)[0][..., 3]  # (side, side) in [0, 1]
    if alpha.max() <= 8 / 255:
        return None  # nothing visible to move
    seconds = params.seconds or frames / PATH_FPS["motion"]
    comps, drawn = place_components(preset_components(params.motion_preset, frames, frames / seconds), alpha,
                                    frames, draws_smaller(params))
    box = alpha_box(alpha, 8 / 255)

    def move(t: int) -> tuple[np.ndarray, np.ndarray] | None:
        if t == cond and drawn.identity:
            return None  # at rest: the sticker itself
        return source_coords(comps, 2 * math.pi * (t - cond) / frames, box, alpha.shape, drawn)

    return move


def _folder_sampling(folder: Path, meta: dict) -> SamplingConfig:
    """A motion model folder's recommended settings (config.json `meta` "sampling", optional) over
    MOTION_DEFAULTS."""
    try:
        return from_dict(SamplingConfig, {**to_dict(MOTION_DEFAULTS), **(meta.get("sampling") or {})})
    except ConfigError as e:
        raise UserError(f"motion model '{folder}': config.json sampling: {e}") from None
