"""Checks on what a user hands in, shared by the CLI and the HTTP service: prompts and output paths.

Each raises UserError with one line naming the bad input and what is expected; the CLI prints it
(errors.one_line_errors), the HTTP layer answers it as a 4xx.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from .errors import UserError

MAX_PROMPT_CHARS = 500
_SPACES = str.maketrans({"\t": " ", "\n": " ", "\r": " "})  # a pasted multi-line prompt is one line


def check_prompt(prompt: str | None, what: str = "prompt", max_chars: int = MAX_PROMPT_CHARS) -> str:
    """The stripped prompt (tabs and line breaks become spaces); UserError if it is empty, longer than
    `max_chars`, or holds other control characters (invisible, and no caption in training has them)."""
    if prompt is not None and not isinstance(prompt, str):
        raise UserError(f"{what} is a {type(prompt).__name__}: expected text")
    text = (prompt or "").translate(_SPACES).strip()
    if not text:
        raise UserError(f"{what} is empty: expected a short description of the motion, e.g. 'waving hello'")
    if len(text) > max_chars:
        raise UserError(f"{what} has {len(text)} characters: expected at most {max_chars}")
    bad = next((i for i, ch in enumerate(text) if unicodedata.category(ch) == "Cc"), None)
    if bad is not None:
        raise UserError(f"{what} has a control character (U+{ord(text[bad]):04X}) at position {bad}: "
                        "expected plain text")
    return text


def prepare_output_file(path: str | Path, what: str = "output") -> Path:
    """`path` ready to receive a file: its folder is created when missing (like `mkdir -p`); UserError
    if `path` is a folder or its folder cannot be made (a file is in the way, no permission)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} '{path}' is a folder: expected a file path (e.g. out.webp)")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{what} '{path}': '{parent}' is not a folder: expected a folder to write in") from None
    except OSError as e:
        raise UserError(f"{what} '{path}': cannot create folder '{parent}' ({e.strerror or e})") from None
    return path
