"""The HTTP request forms, derived from the sampling settings (config.setting metadata).

`settings_form` builds a pydantic model (pydantic.create_model) with one optional field per setting
marked `http`, named by its public name (deprecated names accepted as aliases) and documented with its
help text, range and choices in the OpenAPI schema. Fields are typed (a "maybe" for a yes/no field is a
422 from pydantic), and ranges are checked once, by sampling.params.check_params, in the same words as
the CLI: the form documents them, the one check enforces them.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, Field, create_model

from ..config import SamplingConfig
from ..sampling.params import Setting, settings


def _schema(s: Setting) -> dict[str, Any]:
    """What /docs shows of a setting's allowed values (enforced by check_params, not by pydantic)."""
    if s.choices:
        return {"enum": list(s.choices)}
    if s.range is None:
        return {}
    lo, hi = s.range
    return {"minimum": lo} | ({} if hi is None else {"maximum": hi})


def _field(s: Setting) -> tuple[Any, Any]:
    alias = AliasChoices(s.name, *s.old_names) if s.old_names else None
    note = f" (deprecated names: {', '.join(s.old_names)})" if s.old_names else ""
    return s.kind | None, Field(None, description=s.help + note, validation_alias=alias,
                                json_schema_extra=_schema(s))


def http_settings(only: tuple[str, ...] | None = None, cls: type = SamplingConfig) -> list[Setting]:
    """The settings a form offers: `only` these fields, else every one marked http."""
    every = settings(cls)
    return [s for s in every if s.field in only] if only is not None else [s for s in every if s.http]


def settings_form(name: str, own: dict[str, tuple[Any, Any]], only: tuple[str, ...] | None = None,
                  cls: type = SamplingConfig) -> type[BaseModel]:
    """A pydantic form `name`: the request's `own` fields (pydantic field definitions), then the settings."""
    fields = {s.name: _field(s) for s in http_settings(only, cls)}
    return create_model(name, **own, **fields)


def given_settings(form: BaseModel, only: tuple[str, ...] | None = None, cls: type = SamplingConfig
                   ) -> dict[str, Any]:
    """The settings a request gave, by field (None = the model's default): params.from_flags's input."""
    return {s.field: getattr(form, s.name) for s in http_settings(only, cls)}
