"""`stickers bench --cold`: a fresh process runs the real CLI end to end, the warm figure beside it.

cold_s          wall time of a new `stickers animate STICKER -p PROMPT -o OUT.webp` process (interpreter
                start, imports, model and text-encoder loading, sampling, decoding, writing the file);
import_s        wall time of a new process that only imports the engine's pipeline (the import share);
warm_s          the same animate + write in this process with the same engine, after one warm-up call.
engine          what `stickers animate` ran: "onnx" (the model's current compile, `stickers compile`: no
                torch import) or "torch".
cold_s - warm_s is what a one-off command pays for starting up. cold_cpu_s is the fresh process's user +
system CPU time: on a shared, busy CPU it is closer than wall time to what a quiet machine would show.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import UserError

PROMPT = "waving hello"
# A fresh interpreter running the console entry point exactly as `stickers` does (argv[0] included).
ENTRY = "import sys; sys.argv[0] = 'stickers'; from animated_stickers.cli import main; sys.exit(main())"


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed_process(args: list[str], threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds of a fresh interpreter running `args`."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    cpu0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"cold start: the fresh process failed (exit {proc.returncode}): {last}")
    return wall, cpu


def cold_start(model: Path | None = None, threads: int | None = None, repeats: int = 1) -> dict:
    """Cold (fresh process, real CLI) vs warm (this process) seconds for one sticker; medians of `repeats`."""
    from .bench import synthetic_sticker
    from .optimize import set_threads

    threads = set_threads(threads)
    image = synthetic_sticker()
    with tempfile.TemporaryDirectory(prefix="stickers-cold-") as d:
        png, out = Path(d) / "sticker.png", Path(d) / "out.webp"
        image.save(png)
        cli = ["-c", ENTRY, "animate", str(png), "-p", PROMPT, "-o", str(out), "--threads", str(threads)]
        cli += ["--model", str(model)] if model else []
        colds = sorted(_timed_process(cli, threads) for _ in range(repeats))
        (warm, warm_cpu), params, engine = _warm(model, image, out, repeats, threads)
        module = "onnx_pipeline" if engine == "onnx" else "pipeline"
        imports = sorted(_timed_process(["-c", f"import animated_stickers.sampling.{module}"], threads)
                         for _ in range(repeats))
    mid = (repeats - 1) // 2
    cold, cold_cpu = colds[mid]
    return {"cold_s": round(cold, 3), "cold_cpu_s": round(cold_cpu, 3), "import_s": round(imports[mid][0], 3),
            "import_cpu_s": round(imports[mid][1], 3), "warm_s": round(warm, 3), "warm_cpu_s": round(warm_cpu, 3),
            "startup_s": round(cold - warm, 3), "startup_cpu_s": round(cold_cpu - warm_cpu, 3),
            "threads": threads, "repeats": repeats, "engine": engine,
            "model": str(model or "weights/tiny"), "sampling": {"scheduler": params.scheduler, "steps": params.steps},
            "command": "stickers animate STICKER -p PROMPT -o OUT.webp"}


def _warm(model: Path | None, image, out: Path, repeats: int, threads: int):
    """(median seconds of animate + write in this process after a warm-up call, settings, engine), with
    the engine `stickers animate` picks (its --engine auto)."""
    from ..export.formats import write_animation
    from .onnx_pipeline import OnnxPipeline
    from .preprocess import prepare_sticker

    pipe, engine = OnnxPipeline.open(model, threads), "onnx"
    if pipe is None or not pipe.supports(pipe.sampling):
        from .pipeline import AnimatePipeline

        pipe, engine = AnimatePipeline.from_dir(model), "torch"
    sticker = prepare_sticker(image, "bench sticker", pipe.resolution)
    pipe.animate_stickers([sticker], [PROMPT])  # warm-up: text encoder loaded, caches filled
    times = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        frames = pipe.animate_stickers([sticker], [PROMPT])[0]
        write_animation(frames, out, 8.0)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return sorted(times)[(repeats - 1) // 2], pipe.sampling, engine


def format_cold(result: dict) -> str:
    return (f"cold `stickers animate` (fresh process): {result['cold_s']:.2f} s wall, {result['cold_cpu_s']:.2f} s CPU "
            f"(imports alone {result['import_s']:.2f} s wall, {result['import_cpu_s']:.2f} s CPU)\n"
            f"warm (same call in a loaded process):  {result['warm_s']:.2f} s wall, {result['warm_cpu_s']:.2f} s CPU\n"
            f"start-up cost:                         {result['startup_s']:.2f} s wall, "
            f"{result['startup_cpu_s']:.2f} s CPU  "
            f"[{result['engine']} engine, {result['sampling']['scheduler']} {result['sampling']['steps']} steps, "
            f"{result['threads']} thread(s)]")
