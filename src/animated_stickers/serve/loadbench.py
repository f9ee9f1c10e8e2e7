"""Load benchmark (not a test): stickers/s at concurrency 1, 4, 16 on loopback, batched vs max-batch 1.

Two servers share one loaded pipeline: one micro-batches (max_batch=N, max_wait=M ms), one runs every
request alone (max_batch=1). Each concurrency level runs on both, interleaved, so drift in machine load
hits both alike; the gain is the ratio of the two throughputs measured in the same run. Clients are
closed-loop (each sends its next request when the previous one returns), all with the same settings
and seed so the batcher may merge them.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import time
from typing import Any

import httpx
import numpy as np
from PIL import Image
from tqdm import tqdm

from .app import create_app
from .server import ServerThread
from .settings import ServeSettings

CONCURRENCY = (1, 4, 16)


def demo_sticker(size: int = 128) -> Image.Image:
    """A synthetic sticker: a shaded disc with a soft edge on a transparent canvas."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) * 2 - 1
    r = np.sqrt(xx**2 + yy**2)
    alpha = np.clip((0.8 - r) / 0.04, 0, 1)
    rgba = np.zeros((size, size, 4), np.float32)
    rgba[..., 0] = 0.95
    rgba[..., 1] = 0.55 + 0.35 * (1 - yy) / 2
    rgba[..., 2] = 0.15 + 0.3 * (xx + 1) / 2
    rgba[..., 3] = alpha
    return Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA")


def png_bytes(image: Image.Image) -> bytes:
    """PNG-encode in memory."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


async def _level(url: str, png: bytes, form: dict[str, str], concurrency: int, requests: int,
                 bar: tqdm) -> dict[str, Any]:
    """`concurrency` closed-loop clients send `requests` in all; throughput and latency."""
    latencies: list[float] = []
    sampling_s: list[float] = []  # each sticker's share of its batch's sampling time
    todo = list(range(requests))
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as client:
        before = (await client.get("/v1/stats")).json()

        async def client_loop() -> None:
            while todo:
                todo.pop()
                t0 = time.perf_counter()
                r = await client.post("/v1/animate", data=form, files={"image": ("s.png", png, "image/png")})
                if r.status_code != 200:
                    raise RuntimeError(f"benchmark request failed: {r.status_code} {r.text[:200]}")
                latencies.append(time.perf_counter() - t0)
                sampling_s.append(float(r.headers["x-sampling-ms"]) / 1000 / int(r.headers["x-batch-size"]))
                bar.update(1)

        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        after = (await client.get("/v1/stats")).json()
    batches = after["batches"] - before["batches"]
    return {"stickers_per_s": round(requests / elapsed, 4), "seconds": round(elapsed, 3),
            "p50_latency_s": round(statistics.median(latencies), 3),
            "sampling_s_per_sticker": round(statistics.fmean(sampling_s), 3),
            "mean_batch_size": round(requests / batches, 2) if batches else None}


def run_benchmark(pipeline: Any, steps: int | None = None, rounds: int = 2, max_batch: int = 16,
                  max_wait_ms: float = 20.0, concurrency: tuple[int, ...] = CONCURRENCY,
                  model_label: str = "", size: int = 128) -> dict[str, Any]:
    """Run every level on a batched and an unbatched server; returns the JSON-able report."""
    import torch

    png = png_bytes(demo_sticker(size))
    form = {"prompt": "waving hello", "format": "webp", "seed": "0"}
    if steps:
        form["steps"] = str(steps)
    queue = max(max(concurrency), max_batch) + 4
    modes = {"batched": ServeSettings(max_batch=max_batch, max_wait_ms=max_wait_ms, queue_size=queue),
             "unbatched": ServeSettings(max_batch=1, max_wait_ms=0, queue_size=queue)}
    total = 2 * sum(c * rounds for c in concurrency) + 2
    levels = []
    with ServerThread(create_app(pipeline, modes["batched"])) as batched, \
            ServerThread(create_app(pipeline, modes["unbatched"])) as unbatched, \
            tqdm(total=total, desc="serve-bench", unit="sticker") as bar:
        servers = {"batched": batched, "unbatched": unbatched}
        for srv in servers.values():  # warm-up: first-call costs (allocations, text encoder) stay out
            asyncio.run(_level(srv.url, png, form, 1, 1, bar))
        for c in concurrency:
            row: dict[str, Any] = {"concurrency": c, "requests": c * rounds}
            for name, srv in servers.items():
                row[name] = asyncio.run(_level(srv.url, png, form, c, c * rounds, bar))
            row["gain"] = round(row["batched"]["stickers_per_s"] / row["unbatched"]["stickers_per_s"], 3)
            levels.append(row)
    defaults = getattr(getattr(pipeline, "model", None), "sampling", None)
    return {
        "model": model_label,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "steps": steps or getattr(defaults, "steps", None), "input_px": size, "format": "webp",
        "batched": {"max_batch": max_batch, "max_wait_ms": max_wait_ms}, "unbatched": {"max_batch": 1},
        "levels": levels,
        "gain_at_max_concurrency": levels[-1]["gain"] if levels else None,
    }
