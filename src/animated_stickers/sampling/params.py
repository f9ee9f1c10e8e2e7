"""Sampling settings: the checks and overrides every pipeline shares (torch-free: the ONNX path uses it)."""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any

from ..checks import check_prompt
from ..config import (  # noqa: F401 (re-exported)
    DTYPE_NAMES,
    MAX_FRAMES,
    MAX_LOOP_PIXELS,
    MAX_SEED,
    MAX_VIDEO_FRAMES,
    MOTION_SECONDS,
    PATH_FPS,
    PATHS,
    RENDERS,
    SamplingConfig,
    cond_index_at,
    cond_index_for,
)
from ..errors import UserError


@dataclass(frozen=True)
class Setting:
    """One sampling setting as the CLI, the HTTP form and `check_params` see it (config.setting)."""

    field: str  # the SamplingConfig field
    name: str  # public name: the HTTP field, the `--name` flag, the error words
    kind: type  # int, float, bool or str (a None default means "the model's own")
    default: Any
    help: str
    range: tuple[float, float | None] | None
    choices: tuple[str, ...] | None
    flag: str | None  # CLI declaration when not --name
    switch: Any  # a bool CLI flag that sets this value
    cli: bool
    http: bool
    old_names: tuple[str, ...]

    def expected(self) -> str:
        """The allowed values in words: '1 to 1000', '0 or more', 'one of warp, fuse'."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        lo, hi = self.range
        return f"{lo} or more" if hi is None else f"{lo} to {hi}"


@functools.cache
def settings(cls: type = SamplingConfig) -> tuple[Setting, ...]:
    """The settings of a SamplingConfig-like dataclass, in field order (its fields' config.setting metadata)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        kind = next(a for a in (typing.get_args(hints[f.name]) or (hints[f.name],)) if a is not type(None))
        out.append(Setting(f.name, m.get("name") or f.name, kind, f.default, m.get("help", ""), m.get("range"),
                           m.get("choices"), m.get("flag"), m.get("switch"), m.get("cli", False),
                           m.get("http", False), m.get("old_names", ())))
    return tuple(out)


class SettingError(UserError):
    """A sampling setting out of range; `name` is its public name (the HTTP layer words it as a field)."""

    def __init__(self, setting: Setting, value: Any) -> None:
        self.name = setting.name
        shown = f"'{value}'" if isinstance(value, str) else value
        sep = " " if isinstance(value, str) else "="
        super().__init__(f"{setting.name}{sep}{shown}: expected {setting.expected()}")


def _in_range(s: Setting, value: Any) -> bool:
    if s.choices:
        return value in s.choices
    if s.range is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    lo, hi = s.range
    return lo <= value and (hi is None or value <= hi)


def check_params(params: SamplingConfig) -> SamplingConfig:
    """SettingError (a UserError) for the first setting out of range or choices; returns params. The one
    check of sampling settings for the CLI, HTTP, eval and both engines."""
    for s in settings(type(params)):
        value = getattr(params, s.field)
        if value is not None and not _in_range(s, value):
            raise SettingError(s, value)
    if params.cond_frame is not None and params.num_frames is not None and \
            not 0 <= params.cond_frame < params.num_frames:
        raise UserError(f"cond_frame={params.cond_frame}: expected 0 to {params.num_frames - 1} "
                        f"for {params.num_frames} frames")
    return params


def from_flags(defaults: SamplingConfig, given: dict[str, Any]) -> SamplingConfig:
    """`defaults` with the settings a caller gave (field -> value, None = not given), range-checked: how
    the CLI, the HTTP form and the eval commands turn their options into settings."""
    return check_params(with_overrides(defaults, **given))


def check_seeds(seed: int, count: int = 1, what: str = "--seed ") -> int:
    """`seed` unless one of seed, seed + 1, ..., seed + count - 1 (one per sticker) leaves 0..MAX_SEED."""
    top = MAX_SEED - max(count, 1) + 1
    if not 0 <= seed <= top:
        why = f" for {count} stickers (sticker i uses seed + i, at most 2**31 - 1)" if count > 1 else " (2**31 - 1)"
        raise UserError(f"{what}{seed}: expected 0 to {top}{why}")
    return seed


def with_overrides(params: SamplingConfig, **changes) -> SamplingConfig:
    """A copy of `params` with the non-None `changes` applied; guided_steps capped at steps."""
    p = dataclasses.replace(params, **{k: v for k, v in changes.items() if v is not None})
    return dataclasses.replace(p, guided_steps=min(p.guided_steps, p.steps))


def clip_layout(params: SamplingConfig, frames: int, cond: int) -> tuple[int, int]:
    """(frames, conditioning index) of a latent-video-path call: the params' choice, else the defaults of a
    model trained on `frames` with frame `cond` (config.cond_index_at)."""
    t = params.num_frames or frames
    if t > MAX_VIDEO_FRAMES:
        raise UserError(f"frames={t}: expected 2 to {MAX_VIDEO_FRAMES} on the video path (up to {MAX_FRAMES} on "
                        "the motion path)")
    c = params.cond_frame if params.cond_frame is not None else cond_index_at(frames, cond, t)
    return t, _check_cond(c, t)


def motion_layout(params: SamplingConfig, fps: float | None = None) -> tuple[int, int]:
    """(frames, conditioning index) of a motion-path call: `frames` when given, else fps x seconds (defaults
    24 fps x 2 s = 48); the still is frame 0 unless `cond_frame` says otherwise (config.cond_index_for)."""
    t = params.num_frames or loop_frames(fps or PATH_FPS["motion"], params.seconds or MOTION_SECONDS)
    c = params.cond_frame if params.cond_frame is not None else cond_index_for("motion", t)
    return t, _check_cond(c, t)


def _check_cond(c: int, t: int) -> int:
    if not 0 <= c < t:
        raise UserError(f"cond_frame={c}: expected 0 to {t - 1} for {t} frames")
    return c


def loop_frames(fps: float, seconds: float) -> int:
    """round(fps x seconds): the frames of a motion-path loop; UserError unless 2 to MAX_FRAMES."""
    t = round(fps * seconds)
    if not 2 <= t <= MAX_FRAMES:
        raise UserError(f"fps {fps:g} x seconds {seconds:g} = {t} frames: expected 2 to {MAX_FRAMES} frames per "
                        "loop (a lower fps or a shorter loop)" if t > MAX_FRAMES else
                        f"fps {fps:g} x seconds {seconds:g} = {t} frames: expected at least 2 (a higher fps or a "
                        "longer loop)")
    return t


def with_loop(params: SamplingConfig, path: str, fps: float) -> SamplingConfig:
    """`params` with the loop decided for `path` at playback rate `fps` (after check_path_settings): on the
    motion path `frames` = round(fps x seconds) and `seconds` (default 2) set, unless `frames` was given; the
    video path's loop is `frames` frames (its model's 8 by default)."""
    if path == "video" or params.num_frames is not None:
        return params
    seconds = params.seconds or MOTION_SECONDS
    return dataclasses.replace(params, num_frames=loop_frames(fps, seconds), seconds=seconds)


def check_loop_budget(frames: int, sizes: list[tuple[int, int]]) -> None:
    """UserError when `frames` frames of the largest sticker (w, h) of a call pass MAX_LOOP_PIXELS (frames x
    output pixels: the loop is held in memory as 8-bit RGBA before it is encoded)."""
    w, h = max(sizes, key=lambda s: s[0] * s[1])
    if frames * w * h > MAX_LOOP_PIXELS:
        raise UserError(f"{frames} frames of {w}x{h} px is {frames * w * h / 2**20:.0f} Mpx: expected at most "
                        f"{MAX_LOOP_PIXELS / 2**20:.0f} Mpx (frames x width x height); use a lower fps, a "
                        "shorter loop or a smaller sticker")


# What a setting does not do on the motion path, when given (field -> (applies when, why)); one line each.
NOT_ON_MOTION_PATH = {
    "scheduler": (lambda v: True, "the motion path samples with DDIM"),
    "guided_steps": (lambda v: True, "the motion path guides every step"),
    "prompt_motion": (lambda v: v, "the motion path reads the prompt through the text encoder only; "
                                   "--motion-preset NAME lays a rigid move over it"),
    "render": (lambda v: v != "warp", "the motion path always moves the sticker's own pixels (warp)"),
    "dtype": (lambda v: v != "float32", "the motion model runs in float32"),
}


def check_path_settings(path: str, given: dict) -> None:
    """UserError for a setting given (field -> value, None = not given) that the chosen `path` cannot honour,
    naming the setting and the path that does: the CLI and HTTP check the same way."""
    if path not in PATHS:
        raise UserError(f"path '{path}': expected one of {', '.join(PATHS)}")
    named = {s.field: s.name for s in settings()}
    for field, value in given.items():
        if value is None:
            continue
        if path == "motion" and field in NOT_ON_MOTION_PATH and NOT_ON_MOTION_PATH[field][0](value):
            shown = value if not isinstance(value, bool) else str(value).lower()
            raise UserError(f"{named[field]}={shown}: {NOT_ON_MOTION_PATH[field][1]} (or use the video path)")
        if path == "video" and field == "motion_preset":
            raise UserError(f"motion_preset '{value}': presets are laid over the motion path's generated motion; "
                            "the video path moves as the prompt's motion words say (prompt_motion)")
        if path == "video" and field == "seconds":
            raise UserError(f"seconds={value:g}: the video path's loop is `frames` frames (default 8) played at "
                            "fps; give frames instead, or use the motion path")
    if given.get("num_frames") is not None and given.get("seconds") is not None:
        raise UserError(f"frames={given['num_frames']} and seconds={given['seconds']:g}: expected one of them "
                        "(frames = fps x seconds)")


def check_call(prompts: list[str], params: SamplingConfig, stickers: int) -> tuple[list[str], SamplingConfig]:
    """What both engines check first: one prompt per sticker, the settings, and every sticker's seed."""
    prompts = prompts_per_sticker(prompts, stickers)
    check_seeds(check_params(params).seed, stickers, "seed=")
    return prompts, params


def prompts_per_sticker(prompts: list[str], stickers: int) -> list[str]:
    """One checked prompt per sticker of a call (one prompt for all is repeated); UserError otherwise."""
    if not stickers:
        raise UserError("no images given: expected at least one sticker")
    if len(prompts) == 1 and stickers > 1:
        prompts = prompts * stickers
    if len(prompts) != stickers:
        raise UserError(f"{len(prompts)} prompts for {stickers} images: expected one each (or one for all)")
    return [check_prompt(p) for p in prompts]


def draws_smaller(params) -> bool:
    """Whether a call's settings (RenderSettings) draw the sticker smaller for its motion (a prompt's on the
    video path, a motion preset's on the motion path): not when the exact input is pasted at the conditioning
    frame (it would jump between sizes once per loop)."""
    return params.room and not params.paste_input
