"""`stickers bench`'s motion rows (issue 28): the learned motion model beside the paper's naive baseline and the
video rows, measured in the same run (bench.run_bench).

warm    still -> frames in memory: MotionEngine.volumes (motion_onnx.py) + motion_model.render_frames (8-bit
        frames at the still's size), at 512 px for a 2 s loop at 24 fps (48 frames); per engine (torch, onnx),
        DDIM steps 4 / 8 / 20, guidance 1/1 (one evaluation per step) and dual (three branches in one batch).
        Repeats go round robin over all rows after a warm-up, medians are reported; onnx_vs_torch is the median
        of per-repeat torch / onnx ratios of the same setting (neighbouring runs see the same machine load).
encode  48 frames at 512 px as lossy WebP through the export path (export/formats.animation_bytes: Pillow, colour
        bleed included) at a few method / quality / keyframe settings: seconds and KB, to choose the encoder. The
        frames are the sticker moved by a fixed smooth motion (`smooth_volume`), not the model's: a random model's
        noisy field would make every frame new and overstate the encoder's cost (3.9 MB instead of 1.4 MB).
cold    a fresh interpreter (`python -c`): import + load_motion_engine(onnx) + sample + render + encode the
        README example at its own size (256 px), 48 frames; whether it imported torch.
The model: the folder given, else weights/motion, else a random default-size MotionNet saved and compiled into
a temporary folder (its cost is the architecture's; its motion is noise).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DEFAULT_MODEL_DIR
from ..cpu import available_cores
from .motion_model import render_frames
from .motion_onnx import MotionEngine, OnnxMotionEngine, StaleCompile, TorchMotionEngine, compile_command
from .paths import bundled_motion_model

EXAMPLE = DEFAULT_MODEL_DIR.parents[1] / "examples" / "smiling-face-with-heart-eyes.png"  # the README's sticker
PROMPT = "smiling face with heart-eyes, bouncing happily"
SIDE, FRAMES, FPS = 512, 48, 24.0  # warm rows: 512 px, a 2 s loop at 24 fps
STEPS = (4, 8, 20)
GUIDANCE = {"1/1": (1.0, 1.0), "dual": (1.5, 3.0)}  # dual: IP2P's three branches (the cost ignores the scales)
# Pillow WebP settings (export/formats._write_webp options); lossy, alpha exact unless alpha_quality says not.
# Method 6 is left out: 48 frames at 512 px took 469 s once here (method 0: 2.1 s).
ENCODINGS = {
    "m0 q75": {"method": 0, "quality": 75},
    "m0 q75 k48": {"method": 0, "quality": 75, "kmin": FRAMES - 1, "kmax": FRAMES},  # key frames: the first
    "m0 q60 a50": {"method": 0, "quality": 60, "alpha_quality": 50},
    "m2 q75": {"method": 2, "quality": 75},
    "m4 q85 (export default)": {"method": 4, "quality": 85},
}
COLD_ENCODING = "m0 q75 k48"
COLD_SETTINGS = (4, 1.0, 1.0)  # steps, image and text guidance of the cold run
TARGETS = {"warm_s": 0.3, "cold_s": 2.5}  # issue 28, Build 5

# The cold process: only what `stickers animate` on the onnx motion engine needs (argv: folder, sticker, out).
COLD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from PIL import Image
from animated_stickers.export.formats import write_animation
from animated_stickers.sampling.motion_model import render_frames
from animated_stickers.sampling.motion_onnx import load_motion_engine
t1 = time.perf_counter()
engine = load_motion_engine(sys.argv[1], "onnx")
t2 = time.perf_counter()
still = np.asarray(Image.open(sys.argv[2]).convert("RGBA"))
volume = engine.volumes([still], [{prompt!r}], [0], {steps}, {ig}, {tg})[0]
t3 = time.perf_counter()
frames = [Image.fromarray(f, "RGBA") for f in render_frames(still, volume, {frames})]
t4 = time.perf_counter()
write_animation(frames, sys.argv[3], {fps}, lossless=False, **{encoding!r})
t5 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "sample_s": t3 - t2, "render_s": t4 - t3,
                  "encode_s": t5 - t4, "torch_imported": "torch" in sys.modules, "side": still.shape[1]}}))
"""


def _model(folder: Path | None, tmp: Path, log: Callable[[str], None], random: bool) -> tuple[Path, str]:
    """(a motion model folder, its description): `folder`, else weights/motion, else (or when `random`) a random
    one compiled in tmp."""
    if not random:
        folder = folder or bundled_motion_model()
    if folder is not None:
        return Path(folder), str(folder)
    import torch

    from ..models.motion_net import MotionNet, motion_config, save_motion_model
    from .motion_compile import compile_motion_model

    log("motion: a random default-size motion model (compiling it)")
    torch.manual_seed(0)
    folder = save_motion_model(MotionNet(motion_config()), tmp / "motion")
    compile_motion_model(folder, log=lambda _: None)
    return folder, "random motion_config()"


def _sticker(side: int | None) -> np.ndarray:
    """The README example as straight RGBA uint8 (H, W, 4), resized to side x side (None: its own size)."""
    image = Image.open(EXAMPLE).convert("RGBA")
    return np.asarray(image if side is None else image.resize((side, side), Image.Resampling.LANCZOS))


def _still_to_frames(engine: MotionEngine, still: np.ndarray, steps: int, guidance: tuple[float, float]) -> dict:
    """One warm still -> 48 frames in memory, timed by part; the prompt's text encoding is paid every time."""
    cache = getattr(getattr(engine, "text", None), "_cache", None)  # the torch engine's TextEncoders cache
    if isinstance(cache, dict):
        cache.clear()
    t0 = time.perf_counter()
    volume = engine.volumes([still], [PROMPT], [0], steps, *guidance)[0]
    t1 = time.perf_counter()
    frames = list(render_frames(still, volume, FRAMES))
    t2 = time.perf_counter()
    return {"total": t2 - t0, "sample": t1 - t0, "render": t2 - t1, "network": engine.stats["network_s"],
            "text": engine.stats["text_s"], "nfe": engine.stats["nfe"], "frames": len(frames)}


def smooth_volume(size: int = 64) -> np.ndarray:
    """A fixed plausible loop (4K, s, s) for K = 4 in canvas units: a 2% bob, strongest at the centre, and a 1%
    sway that grows downwards (the encoder rows' motion)."""
    yy, xx = np.mgrid[:size, :size] / size  # (s, s) in [0, 1)
    volume = np.zeros((16, size, size), np.float32)
    volume[2] = 0.02 * np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.05)  # Re C_1.y
    volume[0] = 0.01 * (yy - 0.5)  # Re C_1.x
    return volume


def warm_rows(engines: dict[str, MotionEngine], still: np.ndarray, repeats: int, log: Callable[[str], None]
              ) -> list[dict]:
    """The warm rows (see the module docstring)."""
    settings = [(e, s, g) for e in engines for s in STEPS for g in GUIDANCE]
    for e in engines:  # warm-up: sessions, allocators and text encoders run once at both batch shapes
        log(f"motion: warm-up {e}")
        for g in GUIDANCE.values():
            engines[e].volumes([still], [PROMPT], [0], 1, *g)
    runs: dict[tuple, list[dict]] = {k: [] for k in settings}
    for r in range(repeats):
        for e, s, g in settings:
            log(f"motion: {e} {s} steps guidance {g} (repeat {r + 1}/{repeats})")
            runs[(e, s, g)].append(_still_to_frames(engines[e], still, s, GUIDANCE[g]))
    rows = []
    for (e, s, g), rs in runs.items():
        row = {"name": f"motion-{e}-{s}-{g.replace('/', '')}", "engine": e, "steps": s, "guidance": g,
               "nfe": rs[0]["nfe"], "side": still.shape[1], "frames": FRAMES}
        for k in ("total", "sample", "network", "text", "render"):
            row[f"{k}_s"] = round(statistics.median(x[k] for x in rs), 3)
        row["meets_warm_target"] = row["total_s"] <= TARGETS["warm_s"]
        if e == "onnx" and ("torch", s, g) in runs:
            row["onnx_vs_torch"] = round(statistics.median(
                t["total"] / o["total"] for t, o in zip(runs[("torch", s, g)], rs)), 3)
        rows.append(row)
    return rows


def encode_rows(frames: list[Image.Image], log: Callable[[str], None]) -> list[dict]:
    """Lossy WebP of `frames` at each ENCODINGS setting through the export path: seconds and KB."""
    from ..export.formats import animation_bytes

    rows = []
    for name, opts in ENCODINGS.items():
        log(f"motion: encode {name}")
        t0 = time.perf_counter()
        size = len(animation_bytes(frames, ".webp", FPS, lossless=False, **opts))
        rows.append({"name": name, "options": opts, "seconds": round(time.perf_counter() - t0, 3),
                     "kb": round(size / 1024, 1), "frames": len(frames), "side": frames[0].width})
    return rows


def cold_start(folder: Path, threads: int) -> dict:
    """A fresh interpreter through the onnx motion path, end to end (see the module docstring)."""
    import os

    steps, ig, tg = COLD_SETTINGS
    code = COLD.format(prompt=PROMPT, steps=steps, ig=ig, tg=tg, frames=FRAMES, fps=FPS,
                       encoding=ENCODINGS[COLD_ENCODING])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="stickers-motion-cold-") as d:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, str(folder), str(EXAMPLE), str(Path(d) / "out.webp")],
                              capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"skipped": (proc.stderr.strip().splitlines() or ["(no output)"])[-1]}
    parts = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"cold_s": round(wall, 3), **{k: round(v, 3) if isinstance(v, float) else v for k, v in parts.items()},
            "steps": steps, "guidance": f"{ig:g}/{tg:g}", "frames": FRAMES, "encoding": COLD_ENCODING,
            "meets_cold_target": wall <= TARGETS["cold_s"]}


def motion_bench(folder: Path | None = None, repeats: int = 1, threads: int | None = None,
                 log: Callable[[str], None] = lambda _: None, random: bool = False) -> dict:
    """The motion section of `stickers bench`: warm rows per engine, encoder rows, the cold start."""
    if not EXAMPLE.is_file():
        return {"skipped": f"the example sticker '{EXAMPLE}' is missing"}
    threads = threads or available_cores()
    with tempfile.TemporaryDirectory(prefix="stickers-motion-bench-") as tmp:
        root, source = _model(None if random else folder, Path(tmp), log, random)
        engines: dict[str, MotionEngine] = {"torch": TorchMotionEngine.load(root)}
        try:
            fast = OnnxMotionEngine.load(root, threads)
        except StaleCompile as e:
            fast, why = None, str(e)
        else:
            why = f"no compile: {compile_command(root)}"
        if fast is not None:
            engines["onnx"] = fast
        still = _sticker(SIDE)
        rows = warm_rows(engines, still, repeats, log)
        frames = [Image.fromarray(f, "RGBA") for f in render_frames(still, smooth_volume(), FRAMES)]
        result = {"model": source, "prompt": PROMPT, "threads": threads, "targets": TARGETS, "rows": rows,
                  "encode": encode_rows(frames, log)}
        if fast is None:
            result["onnx"] = {"skipped": why}
        else:
            log("motion: cold start")
            result["cold"] = cold_start(root, threads)
    return result


def format_motion(result: dict, naive_s: float | None = None) -> str:
    """Table lines of the motion section (x naive: the naive video row's seconds per sticker over the row's)."""
    if "skipped" in result:
        return f"motion: skipped: {result['skipped']}"
    lines = [f"motion model ({result['model']}), {FRAMES} frames at {SIDE} px, warm; target "
             f"{TARGETS['warm_s']} s", f"{'config':24} {'NFE':>4} {'total s':>8} {'sample':>7} {'render':>7} "
             f"{'x naive':>7} {'x torch':>7}"]
    for r in result["rows"]:
        lines.append(f"{r['name']:24} {r['nfe']:>4.0f} {r['total_s']:>8.3f} {r['sample_s']:>7.3f} "
                     f"{r['render_s']:>7.3f} {naive_s / r['total_s'] if naive_s else float('nan'):>7.2f} "
                     f"{r.get('onnx_vs_torch', float('nan')):>7.2f}")
    for r in result["encode"]:
        lines.append(f"encode WebP {r['name']:24} {r['seconds']:>6.2f} s {r['kb']:>7.0f} KB ({r['frames']} x "
                     f"{r['side']} px)")
    cold = result.get("cold") or result.get("onnx", {})
    if "cold_s" in cold:
        lines.append(f"cold onnx motion path ({cold['side']} px, {cold['steps']} steps, {cold['guidance']}, "
                     f"{cold['encoding']}): {cold['cold_s']:.2f} s (import {cold['import_s']:.2f}, load "
                     f"{cold['load_s']:.2f}, sample {cold['sample_s']:.2f}, render {cold['render_s']:.2f}, encode "
                     f"{cold['encode_s']:.2f}); torch imported: {cold['torch_imported']}; target {TARGETS['cold_s']} s")
    elif cold:
        lines.append(f"cold onnx motion path: skipped: {cold['skipped']}")
    return "\n".join(lines)
