"""Helpers shared by the human-evaluation tests (tiny animated WebPs, a loopback server), and their own checks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image

from animated_stickers.eval.human.questions import QUESTIONS

PROMPTS = ["a cat waving", "a dog jumping", "a frog laughing", "a sun spinning", "a heart beating"]


def make_sticker_animation(path: Path, seed: int, size: int = 48, frames: int = 8) -> Path:
    """A small looping animated WebP with alpha: a coloured disc moving on a transparent canvas."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(40, 255, size=3)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for t in range(frames):
        cx = size / 2 + size / 6 * np.sin(2 * np.pi * t / frames)
        disc = (xx - cx) ** 2 + (yy - size / 2) ** 2 < (size / 4) ** 2
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[disc, :3] = colour
        rgba[disc, 3] = 255
        images.append(Image.fromarray(rgba, "RGBA"))
    images[0].save(path, save_all=True, append_images=images[1:], duration=125, loop=0, lossless=True, exact=True)
    return path


def make_eval_folder(folder: Path, n: int, seed: int = 0) -> Path:
    """A folder of n animations named by stem plus prompts.json, as `import-job` expects."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        make_sticker_animation(folder / f"sticker{i}.webp", seed + i)
        entries.append({"image": f"sticker{i}.png", "prompt": PROMPTS[i % len(PROMPTS)]})
    (folder / "prompts.json").write_text(json.dumps(entries))
    return folder


def make_hitl_folder(folder: Path, n: int, models: tuple[str, ...] = ("t1", "t2", "t3")) -> Path:
    """DIR/<model>/<stem>.webp for every model, plus prompts.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for m_i, m in enumerate(models):
        (folder / m).mkdir(exist_ok=True)
        for i in range(n):
            make_sticker_animation(folder / m / f"s{i}.webp", 100 * m_i + i)
    entries = [{"image": f"s{i}.png", "prompt": PROMPTS[i % len(PROMPTS)]} for i in range(n)]
    (folder / "prompts.json").write_text(json.dumps(entries))
    return folder


def all_yes() -> dict:
    return {q.key: "yes" for q in QUESTIONS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/questions", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server at {base} did not start in {timeout} s")


@contextmanager
def server_thread(app):
    """Run a FastAPI app with uvicorn on a free loopback port in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


def start_server_process(db: str, port: int, log: Path) -> subprocess.Popen:
    """The app's `serve` (what `stickers eval human serve` runs) in a child process, so it can be killed hard.

    Called through app.serve rather than the Typer CLI: importing the CLI pulls in torch (via
    errors.one_line_errors), which costs ~10 s per start on a busy 2-core machine.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = ("import sys; from animated_stickers.eval.human.app import serve; "
            "serve(sys.argv[1], port=int(sys.argv[2]), signup=True)")
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", code, db, str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env)


def test_made_animation_is_animated_with_alpha(tmp_path):
    path = make_sticker_animation(tmp_path / "a.webp", seed=1)
    with Image.open(path) as im:
        assert im.n_frames == 8
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGBA")))
    alpha = frames[0][..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # transparent background, opaque subject
    assert not np.array_equal(frames[0], frames[2])  # it moves
