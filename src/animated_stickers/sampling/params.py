"""Sampling settings: the checks and overrides every pipeline shares (torch-free: the ONNX path uses it)."""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any

from ..checks import check_prompt
from ..config import DTYPE_NAMES, MAX_FRAMES, MAX_SEED, RENDERS, SamplingConfig, cond_index_at  # noqa: F401
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
    """(frames, conditioning index) of a call: the params' choice, else the defaults of a model trained on
    `frames` with frame `cond` (config.cond_index_at)."""
    t = params.num_frames or frames
    c = params.cond_frame if params.cond_frame is not None else cond_index_at(frames, cond, t)
    if not 0 <= c < t:
        raise UserError(f"cond_frame={c}: expected 0 to {t - 1} for {t} frames")
    return t, c


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
