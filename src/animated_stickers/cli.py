"""The `stickers` command: thin Typer commands that wire modules together, nothing else.

Each area registers its own commands (data/cli.py, eval/cli.py, sampling/cli.py, export/cli.py,
serve/cli.py, training/cli.py, models/cli.py) so that this file stays a table of contents.
"""

from __future__ import annotations

import importlib
import os

import typer

app = typer.Typer(help="Animated stickers: static RGBA sticker + prompt -> looping transparent animation.",
                  no_args_is_help=True, pretty_exceptions_enable=False)



@app.callback()
def _root() -> None:
    """Animated stickers: static RGBA sticker + prompt -> looping transparent animation."""


# module -> how it is mounted: a sub-app name, or None when it registers top-level commands.
_AREAS = {
    "animated_stickers.models.cli": None,       # info
    "animated_stickers.training.cli": None,     # train
    "animated_stickers.sampling.cli": None,     # animate, generate, bench
    "animated_stickers.export.cli": None,       # export
    "animated_stickers.serve.cli": None,        # serve
    "animated_stickers.data.cli": "data",       # data fetch|prepare|stats|preview
    "animated_stickers.eval.cli": "eval",       # eval auto|calibrate|human ...
}

for _mod, _name in _AREAS.items():
    try:
        _m = importlib.import_module(_mod)
    except ModuleNotFoundError as _e:
        if _e.name != _mod:
            raise
        continue
    if _name is None:
        _m.register(app)
    else:
        app.add_typer(_m.app, name=_name)


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app()
