"""What the HITL commands read is untrusted: every file is checked up front, before any model or work.

Prompt folders (prompts.json via the one parser, prompts_file.py: image paths stay inside the folder,
prompts checked), their still images (decoded under the io_limits budgets), candidates manifests
(JSON of the expected shape, files inside the candidates folder) and SQLite stores (a real database
file). Counts have documented upper bounds, refused at once. Each problem is one UserError line that
names the file and the entry.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from PIL import Image

from ..errors import UserError
from ..prompts_file import MAX_ENTRIES

MAX_PROMPTS = MAX_ENTRIES  # `hitl prompts --n`: prompts in a set (a prompts.json holds at most this many)
MAX_PER_PROMPT = 32  # `hitl generate --per-prompt`: candidates per prompt (the paper uses 6)
MAX_CANDIDATES = 100_000  # jobs in a candidates manifest.json
MAX_MANIFEST_BYTES = 64 * 2**20  # a manifest of MAX_CANDIDATES rows is about 25 MB
SQLITE_MAGIC = b"SQLite format 3\x00"


def check_count(value: int, flag: str, maximum: int, minimum: int = 1) -> int:
    """`value` unless it is outside minimum..maximum (one line naming the flag and the bounds)."""
    if not minimum <= value <= maximum:
        raise UserError(f"{flag} {value}: expected {minimum} to {maximum:,}")
    return value


def load_still(path: Path, where: str) -> Image.Image:
    """A prompt set's image decoded under the shared budgets (preprocess.load_image), as RGBA; UserError
    naming `where` (file and entry) when it is missing or unreadable."""
    from ..sampling.preprocess import load_image

    try:
        return load_image(path).convert("RGBA")
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def check_stills(folder: Path, entries: list[dict]) -> None:
    """Decode every image of a prompt set once, before any model loads."""
    from ..prompts_file import PROMPTS_FILE

    for i, e in enumerate(entries):
        load_still(folder / e["image"], f"'{folder / PROMPTS_FILE}' entry {i}")


def read_entries(path: Path, images_must_exist: bool = False) -> list[dict]:
    """A prompts.json's entries with their extra fields (bucket, subject, ...), after the one parser
    (prompts_file.py) has checked them; prompts as checked."""
    from ..prompts_file import read_prompts_file

    checked = read_prompts_file(path, images_must_exist)
    entries = json.loads(path.read_text(encoding="utf-8"))
    return [{**e, "prompt": c.prompt} for e, c in zip(entries, checked)]


def read_json_file(path: Path, what: str) -> dict:
    """A small JSON object this package wrote (a plan, a pointer file); one line naming it otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"'{path}' is not readable JSON ({type(e).__name__}): expected {what}") from None
    if not isinstance(data, dict):
        raise UserError(f"'{path}' is not a JSON object: expected {what}")
    return data


def read_candidates_manifest(path: Path) -> dict:
    """A candidates folder's manifest.json: an object whose `jobs` rows name files inside the folder."""
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise UserError(f"'{path}' is {path.stat().st_size:,} bytes: expected at most {MAX_MANIFEST_BYTES:,}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"'{path}' is not readable JSON ({type(e).__name__}): expected the manifest written by "
                        "`stickers hitl generate`") from None
    if not (isinstance(data, dict) and isinstance(data.get("prompts"), str) and isinstance(data.get("jobs"), list)):
        raise UserError(f"'{path}': expected an object with 'prompts' (a folder) and 'jobs' (a list), as written by "
                        "`stickers hitl generate`")
    check_count(len(data["jobs"]), f"'{path}': candidates", MAX_CANDIDATES, minimum=0)
    root = path.parent.resolve()
    for i, job in enumerate(data["jobs"]):
        if not (isinstance(job, dict) and isinstance(job.get("file"), str) and isinstance(job.get("stem"), str)
                and isinstance(job.get("done"), bool)):
            raise UserError(f"'{path}' job {i}: expected {{\"file\": ..., \"stem\": ..., \"done\": true|false}}")
        if not (root / job["file"]).resolve().is_relative_to(root):
            raise UserError(f"'{path}' job {i}: file '{job['file']}' is outside '{path.parent}': expected a "
                            "candidate inside its folder")
    return data


def check_sqlite(db: str) -> str:
    """`db` unless it names an SQLite file that exists and is not a sound database (other URLs pass)."""
    if "://" in db and not db.startswith("sqlite:///"):
        return db
    path = Path(db.removeprefix("sqlite:///")).expanduser()
    if not path.is_file() or path.stat().st_size == 0:
        return db  # a new store is created by the command
    try:
        with path.open("rb") as f:
            ok = f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
        if ok:
            conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
            try:
                ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            finally:
                conn.close()
    except (OSError, sqlite3.Error):
        ok = False
    if not ok:
        raise UserError(f"--db {db}: '{path}' is not an intact SQLite database: expected the store written by "
                        "`stickers hitl select` or `stickers eval human`")
    return db
