"""`python -m animated_stickers.eval.human ...` runs the same commands as `stickers eval human ...`."""

from .cli import app

app()
