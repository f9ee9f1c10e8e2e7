"""The `stickers` command: thin Typer commands that wire modules together, nothing else.

Each area registers its own commands (data/cli.py, eval/cli.py, sampling/cli.py, export/cli.py,
serve/cli.py, training/cli.py, models/cli.py) so that this file stays a table of contents.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

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
    "animated_stickers.sampling.cli": None,     # animate, generate, compile, bench
    "animated_stickers.export.cli": None,       # export
    "animated_stickers.serve.cli": None,        # serve
    "animated_stickers.data.cli": "data",       # data fetch|prepare|stats|preview
    "animated_stickers.eval.cli": "eval",       # eval auto|calibrate|human ...
    "animated_stickers.hitl.cli": "hitl",       # hitl prompts|teachers|generate|select|finetune|report
}



def _areas_for(argv: list[str]) -> dict[str, str | None]:
    """The areas the console command needs: a sub-app (data, eval) is imported only when it is the
    command (or for help), so `stickers animate` does not pay for e.g. the eval database layer (~1.3 s
    of imports). Imported as a library (tests, CliRunner), every area is registered."""
    if Path(argv[0]).name != "stickers" or len(argv) < 2 or argv[1].startswith("-"):
        return _AREAS
    subapps = {n for n in _AREAS.values() if n}
    if argv[1] in subapps:
        return {m: n for m, n in _AREAS.items() if n == argv[1]}
    return {m: n for m, n in _AREAS.items() if n is None}


for _mod, _name in _areas_for(sys.argv).items():
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
    from .errors import exit_on_sigterm

    exit_on_sigterm()  # SIGTERM cleans up temp files like Ctrl-C does
    app()


if __name__ == "__main__":  # `accelerate launch -m animated_stickers.cli hitl generate ...`
    main()
