"""`stickers bench`: naive vs DPM-Solver vs adaptive guidance vs optimised sampling, one run, same inputs.

Every configuration animates the same synthetic sticker and prompt end to end (text encode, VAE
encode, sampling, VAE decode, restore to the input size) after a warm-up; times are medians over
`repeats`. The text cache is cleared before each run so text encoding is always paid.

floor_ratio = measured time / floor, where floor = the UNet calls of that very run (NFE evaluations in
`unet_calls` forwards: one 3B forward per batched guided step, 3 forwards of B for the naive separate
branches, one of B per unguided step; each timed as it runs) + VAE decode + VAE encode + text encode of
the same run. Timing the parts inside the run keeps the ratio honest on a shared, noisy CPU; what is
left over is the sampler's own overhead (scheduler steps, guidance arithmetic, Python, keying/resizing
and restoring the frames). `unet_forward_s` gives the median single forward per batch shape.
Peak memory = peak RSS above the RSS before the timed runs (psutil polling every 2 ms; torch's
allocations are invisible to tracemalloc).

The optimised configuration turns on each training-free speed-up that measured faster than its
"off" state on this machine (ablation at the guided batch shape), so it adapts to the CPU it runs on.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import torch
from PIL import Image
from tqdm import tqdm

from ..config import DEFAULT_MODEL_DIR, SamplingConfig, model_config
from ..errors import UserError
from ..models.checkpoint import StickerModel
from ..models.unet import count_parameters
from .decoder_bench import add_shares, decoder_cost
from .optimize import SpeedOptions, set_threads
from .pipeline import DTYPES, AnimatePipeline, load_stage_model

PROMPT = "waving hello"
FLOOR_PARTS = ("unet_s", "vae_decode_s", "vae_encode_s", "text_encode_s")
SPEEDUPS = ("context_once", "bf16", "jit", "channels_last")  # candidates for the optimised config
MIN_GAIN = 1.03  # a speed-up must be >= 3% faster at the guided shape to be kept
NAIVE_GUIDANCE = (7.5, 2.0)  # paper's sigma_I, sigma_T for the naive baseline


@dataclass
class BenchConfig:
    """One benchmarked way of sampling."""

    name: str
    params: SamplingConfig
    batched: bool = True  # three guidance branches in one forward
    speed: SpeedOptions = field(default_factory=lambda: SpeedOptions(context_once=False))
    model: StickerModel | None = None  # None: the benchmark's main model


def synthetic_sticker(size: int = 256) -> Image.Image:
    """A smooth RGBA blob on transparency (deterministic), standing in for a user's sticker."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    inside = (xx - 0.5) ** 2 / 0.16 + (yy - 0.55) ** 2 / 0.12 <= 1
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 250, (200 * yy + 40).astype(np.uint8), 60
    rgba[..., 3] = np.where(inside, 255, 0)
    return Image.fromarray(rgba, "RGBA")


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc), so the next RSS delta measures the next run."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Context manager: peak resident memory above the starting RSS, polled every 2 ms (MB)."""

    def __enter__(self) -> PeakRSS:  # noqa: PYI034
        gc.collect()
        _release_free_memory()
        self.proc = psutil.Process()
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.mb = (self.peak - self.start) / 2**20


def _clear_text_cache(model: StickerModel) -> None:
    cache = getattr(model.text, "_cache", None)
    if isinstance(cache, dict):
        cache.clear()


def paired(fn_a: Callable[[], object], fn_b: Callable[[], object], pairs: int) -> tuple[float, float, float]:
    """Median times of a and b and the median of per-pair ratios a/b, alternating a, b, a, b, ...
    (neighbouring runs see the same machine load, so the ratio survives a noisy shared CPU)."""
    for fn in (fn_a, fn_b, fn_a, fn_b):  # warm-up (TorchScript optimises over its first runs)
        fn()
    ta, tb = [], []
    for _ in range(pairs):
        for fn, times in ((fn_a, ta), (fn_b, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb), statistics.median(a / b for a, b in zip(ta, tb))


class Bench:
    """The model, the input and the settings of one benchmark run."""

    def __init__(self, model: StickerModel, repeats: int, batch: int) -> None:
        self.model = model.eval()
        self.repeats = repeats
        self.batch = batch
        self.image = synthetic_sticker()

    # ---------------------------------------------------------------- end-to-end configurations
    def run_once(self, pipe: AnimatePipeline, params: SamplingConfig, b: int) -> dict:
        """One end-to-end `animate` of b copies of the sticker (text cache cleared), with its timings."""
        _clear_text_cache(pipe.model)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            pipe.animate([self.image] * b, [PROMPT] * b, params)
            total = time.perf_counter() - t0
        forwards: dict[int, list[float]] = {}
        for n, sec in pipe.net.calls:
            forwards.setdefault(n, []).append(sec)
        return {"total": total, "stats": dict(pipe.stats), "forwards": forwards, "mb": mem.mb}

    def measure(self, configs: list[BenchConfig], progress: Callable[[str], None]) -> list[dict]:
        """All configurations, repeats interleaved round-robin so that load drift hits them alike."""
        pipes = [AnimatePipeline(c.model or self.model, c.speed, batched_guidance=c.batched) for c in configs]
        for c, pipe in zip(configs, pipes):  # warm-up: one guided + one unguided step builds every trace
            progress(f"warm-up {c.name}")
            warm = dataclasses.replace(c.params, steps=2, guided_steps=min(c.params.guided_steps, 1))
            for b in (1, self.batch):
                self.run_once(pipe, warm, b)
        runs: dict[tuple[int, int], list[dict]] = {}
        for r in range(self.repeats):
            for i, (c, pipe) in enumerate(zip(configs, pipes)):
                progress(f"{c.name} (repeat {r + 1}/{self.repeats})")
                for b in (1, self.batch):
                    runs.setdefault((i, b), []).append(self.run_once(pipe, c.params, b))
        return [self._summary(c, pipe, {b: runs[(i, b)] for b in (1, self.batch)})
                for i, (c, pipe) in enumerate(zip(configs, pipes))]

    def _summary(self, cfg: BenchConfig, pipe: AnimatePipeline, runs: dict[int, list[dict]]) -> dict:
        p = cfg.params
        out: dict = {"name": cfg.name, "scheduler": p.scheduler, "steps": p.steps,
                     "guided_steps": min(p.guided_steps, p.steps),
                     "guidance_branches": "embedded (one forward, distilled)" if pipe.model.unet.guidance_embedded
                     else "batched (one 3B forward)" if cfg.batched else "three separate forwards",
                     "dtype": p.dtype,
                     "speedups": [k for k in ("context_once", "jit", "channels_last", "compile")
                                  if getattr(cfg.speed, k)] + (["bf16"] if p.dtype == "bfloat16" else [])}
        out.update(_timings(runs))
        for b, rs in runs.items():
            run = sorted(rs, key=lambda r: r["total"])[(len(rs) - 1) // 2]  # the median run (lower middle)
            if b == 1:
                out["unet_calls"] = run["stats"]["forwards"]
            out["unet_forward_s" + ("" if b == 1 else f"_batch{b}")] = {
                f"{n} videos": round(statistics.median(v), 4) for n, v in sorted(run["forwards"].items())}
        if pipe.net.status:
            out["jit_status"] = pipe.net.status
        return out

    def measure_onnx(self, name: str, folder: Path | None, threads: int, progress: Callable[[str], None]) -> dict:
        """The compiled ONNX engine (onnx_pipeline.py) on the same sticker, at its compiled settings."""
        from .onnx_pipeline import OnnxPipeline
        from .preprocess import prepare_sticker

        pipe = OnnxPipeline.open(folder, threads) if folder else None
        if pipe is None or not pipe.supports(pipe.sampling):
            return {"name": name, "skipped": f"no current ONNX compile of '{folder}' for its default settings "
                                             "(stickers compile --model DIR)"}
        sticker = prepare_sticker(self.image, "bench sticker", pipe.resolution)
        progress(f"warm-up {name}")
        pipe.animate_stickers([sticker], [PROMPT])
        runs: dict[int, list[dict]] = {1: [], self.batch: []}
        for r in range(self.repeats):
            progress(f"{name} (repeat {r + 1}/{self.repeats})")
            for b in runs:
                with PeakRSS() as mem:
                    t0 = time.perf_counter()
                    pipe.animate_stickers([sticker] * b, [PROMPT] * b)
                    total = time.perf_counter() - t0
                runs[b].append({"total": total, "stats": dict(pipe.stats), "mb": mem.mb})
        p = pipe.sampling
        return {"name": name, "engine": "onnxruntime (stickers compile; one sticker per call)",
                "scheduler": p.scheduler, "steps": p.steps, "dtype": p.dtype, **_timings(runs)}

    # ---------------------------------------------------------------- speed-ups one by one
    def _forward(self, pipe: AnimatePipeline, dtype: str, b: int) -> Callable[[], object]:
        cfg = pipe.model.cfg
        h, c = cfg.latent_size, cfg.vae.latent_channels
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(b, c, cfg.num_frames, h, h, generator=gen)
        img = torch.randn(b, c, h, h, generator=gen)
        with torch.no_grad():
            ctx = pipe.conditions([PROMPT] * b, img).context
        t = torch.full((b,), 500)

        def call() -> object:
            pipe.net.dtype = DTYPES[dtype]
            return pipe.net(x, t, ctx, img)

        return call

    def ablation(self, pairs: int = 3) -> dict:
        """Each speed-up alone vs all off (fp32, context per frame), one UNet call, A/B interleaved,
        at the guided shape (3 videos) and at 1 video."""
        res = {}
        off = AnimatePipeline(self.model, SpeedOptions(context_once=False))
        for name in SPEEDUPS:
            on = AnimatePipeline(self.model, SpeedOptions(**{"context_once": False, **({name: True} if name != "bf16"
                                                                                         else {})}))
            row = {}
            for b in (3, 1):
                t_off, t_on, ratio = paired(self._forward(off, "float32", b),
                                            self._forward(on, "bfloat16" if name == "bf16" else "float32", b), pairs)
                row.update({f"off_s_{b}": round(t_off, 4), f"on_s_{b}": round(t_on, 4),
                            f"speedup_{b}": round(ratio, 3)})
            if on.net.status:
                row["status"] = on.net.status
            res[name] = row
        return res

    def cross_attention(self, pairs: int = 5) -> dict:
        """Cross-attention layers alone: K/V once per video vs the context repeated per frame (3 videos)."""
        unet = self.model.unet
        layers = [m for n, m in unet.unet.named_modules() if n.endswith("attn2")]
        cfg = self.model.cfg
        b, t = 3, cfg.num_frames
        gen = torch.Generator().manual_seed(0)
        unet.frames.num_frames = t
        n = (cfg.latent_size // 2) ** 2  # a representative token count
        inputs = [(a, torch.randn(b * t, n, a.query_dim, generator=gen),
                   torch.randn(b, 32, a.cross_attention_dim, generator=gen)) for a in layers]

        def run(repeat: bool) -> None:
            with torch.no_grad():
                for a, hidden, ctx in inputs:
                    a(hidden, encoder_hidden_states=ctx.repeat_interleave(t, dim=0) if repeat else ctx)

        t_rep, t_once, ratio = paired(lambda: run(True), lambda: run(False), pairs)
        return {"layers": len(layers), "videos": b, "once_s": round(t_once, 5), "repeated_s": round(t_rep, 5),
                "speedup": round(ratio, 3)}


def _timings(runs: dict[int, list[dict]]) -> dict:
    """Seconds, memory and floor per sticker of the median run, per batch size (suffix _batchB)."""
    out: dict = {}
    for b, rs in runs.items():
        suffix = "" if b == 1 else f"_batch{b}"
        run = sorted(rs, key=lambda r: r["total"])[(len(rs) - 1) // 2]  # the median run (lower middle)
        stats, total = run["stats"], run["total"]
        floor = sum(stats[k] for k in FLOOR_PARTS)
        if b == 1:
            out["nfe"] = stats["nfe"]
        out[f"seconds_per_sticker{suffix}"] = round(total / b, 3)
        out[f"peak_memory_mb{suffix}"] = round(max(r["mb"] for r in rs), 1)
        out[f"floor_seconds{suffix}"] = round(floor / b, 3)
        out[f"floor_ratio{suffix}"] = round(total / floor, 3)
        out[f"floor_parts{suffix}"] = {k: round(stats[k] / b, 3) for k in FLOOR_PARTS}
    return out


def _machine(threads: int) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "threads": threads, "torch": torch.__version__, "load_avg_1m": round(os.getloadavg()[0], 2)}


class _Phases:
    """Progress over the benchmark's phases (stderr): call with each phase's name as it starts."""

    def __init__(self, total: int) -> None:
        self.bar = tqdm(total=total, unit="phase", file=sys.stderr, leave=False)
        self.started = False

    def __call__(self, name: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description(f"bench: {name}")

    def note(self, name: str) -> None:
        """A step inside the current phase."""
        self.bar.set_description(f"bench: {name}")

    def close(self) -> None:
        self.bar.update(1)
        self.bar.close()


CONFIG_NAMES = ("naive", "dpm15", "dpm15-adaptive", "dpm15-adaptive-optimized", "distilled", "onnx", "distilled-onnx",
                "motion")  # motion: the motion model's section (motion_bench.py)
ONNX_CONFIGS = ("onnx", "distilled-onnx")  # the compiled engine of the model / of --distilled


def _load(model: Path | None, random: bool) -> tuple[StickerModel, str]:
    if random or (model is None and not (DEFAULT_MODEL_DIR / "config.json").is_file()):
        torch.manual_seed(0)
        return StickerModel.create(model_config("tiny")).eval(), "random tiny (model_config('tiny'))"
    return load_stage_model(model, "video", DEFAULT_MODEL_DIR), str(model or DEFAULT_MODEL_DIR)


def run_bench(model: Path | None = None, random: bool = False, distilled: Path | None = None, repeats: int = 1,
              batch: int = 4, only: list[str] | None = None, threads: int | None = None, ablate: bool = True,
              decoder: bool = True, motion_model: Path | None = None) -> dict:
    """Run the benchmark and return its JSON-able result (`only`: a subset of CONFIG_NAMES).
    `ablate=False` skips the per-speed-up ablation: the optimised rows use SpeedOptions' defaults;
    `decoder=False` skips the reference-decoder costs. `motion_model`: the motion section's model folder
    (default weights/motion, else a random one; `random` always takes a random one)."""
    wanted = set(only or CONFIG_NAMES)
    if wanted - set(CONFIG_NAMES):
        raise UserError(f"unknown configuration '{min(wanted - set(CONFIG_NAMES))}': expected some of "
                        f"{', '.join(CONFIG_NAMES)}")
    threads = set_threads(threads)
    optimise = bool({"dpm15-adaptive-optimized", "distilled"} & wanted)
    measured = len(wanted - ({"distilled", "distilled-onnx"} if distilled is None else set()) - {"motion"})
    log = _Phases(1 + (optimise and ablate) + measured * (1 + repeats) + ("motion" in wanted))
    m, source = _load(model, random)
    bench = Bench(m, repeats, batch)

    def params(**kw) -> SamplingConfig:
        return dataclasses.replace(m.sampling, **{"dtype": "float32", **kw})

    configs = [
        # The paper's unoptimised baseline (3.3.1): DDIM 50, full guidance at its scales as three separate
        # forwards, fp32, text context repeated per frame = 150 evaluations, whatever the model's defaults.
        BenchConfig("naive", params(scheduler="ddim", steps=50, guided_steps=50, image_guidance=NAIVE_GUIDANCE[0],
                                    text_guidance=NAIVE_GUIDANCE[1]), batched=False),
        BenchConfig("dpm15", params(scheduler="dpm", steps=15, guided_steps=15)),
        BenchConfig("dpm15-adaptive", params(scheduler="dpm", steps=15, guided_steps=8)),
    ]
    result: dict = {"machine": _machine(threads), "model": {
        "source": source, "resolution": m.cfg.resolution,
        "latents": [m.cfg.vae.latent_channels, m.cfg.num_frames, m.cfg.latent_size, m.cfg.latent_size],
        "unet_params_m": round(count_parameters(m.unet) / 1e6, 2),
        "vae_params_m": round(count_parameters(m.vae) / 1e6, 2)},
        "settings": {"repeats": repeats, "batch": batch, "prompt": PROMPT, "input": "synthetic 256x256 RGBA",
                     "min_gain_to_keep_a_speedup": MIN_GAIN}}
    log("cross-attention")
    result["cross_attention"] = bench.cross_attention()
    if optimise:
        if ablate:
            log("ablation")
            result["ablation"] = bench.ablation()
            chosen = [k for k, r in result["ablation"].items() if r["speedup_3"] >= MIN_GAIN]
        else:
            chosen = [k for k in ("context_once", "jit", "channels_last") if getattr(SpeedOptions(), k)]
        result["selected_speedups"] = chosen
        speed = SpeedOptions(context_once="context_once" in chosen, jit="jit" in chosen,
                             channels_last="channels_last" in chosen)
        dtype = "bfloat16" if "bf16" in chosen else "float32"
        configs.append(BenchConfig("dpm15-adaptive-optimized", params(scheduler="dpm", steps=15, guided_steps=8,
                                                                       dtype=dtype), speed=speed))
        if distilled is not None:
            dm = load_stage_model(distilled, "video", distilled)
            configs.append(BenchConfig("distilled", dataclasses.replace(dm.sampling, dtype=dtype), speed=speed,
                                       model=dm))
    rows = bench.measure([c for c in configs if c.name in wanted], log)
    if distilled is None and "distilled" in wanted:
        rows.append({"name": "distilled", "skipped": "no --distilled model folder given (the result "
                                                     "of a distill-steps stage, training/distill.py)"})
    folders = {"onnx": None if random else (model or DEFAULT_MODEL_DIR), "distilled-onnx": distilled}
    rows += [bench.measure_onnx(n, folders[n], threads, log) for n in ONNX_CONFIGS if n in wanted]
    naive = next((r for r in rows if r["name"] == "naive"), None)
    for r in rows:
        if naive and "seconds_per_sticker" in r:
            key = f"seconds_per_sticker_batch{batch}"
            r["speedup_vs_naive"] = round(naive["seconds_per_sticker"] / r["seconds_per_sticker"], 2)
            if key in r:  # (absent when batch is 1)
                r[f"speedup_vs_naive_batch{batch}"] = round(naive[key] / r[key], 2)
    if "motion" in wanted:
        from .motion_bench import motion_bench

        log("motion model")
        result["motion"] = motion_bench(motion_model, repeats, threads, log.note, random)
        for r in result["motion"].get("rows", []):  # the naive row is the video path's, at its own canvas
            if naive:
                r["speedup_vs_naive"] = round(naive["seconds_per_sticker"] / r["total_s"], 2)
    log.close()
    result["configs"] = rows
    # Reference-guided decoding at 256/512 px vs decode-and-upscale (decoder_bench.py), and its share of
    # the last (fastest) configuration's time per sticker, whatever decode that run did swapped for it.
    result["decoder"] = decoder_cost(m, bench.image) if decoder else {}
    last = next((r for r in reversed(rows) if "seconds_per_sticker" in r), None)
    if last and decoder:
        add_shares(result["decoder"], last["seconds_per_sticker"], last["floor_parts"]["vae_decode_s"])
    result["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    return result


def format_table(result: dict) -> str:
    """A plain-text table of the configurations."""
    b = result["settings"]["batch"]
    lines = [f"{'config':28} {'NFE':>4} {'s/sticker':>9} {f's/st@b{b}':>9} {'peak MB':>8} {'x naive':>7} {'floor':>6}"]
    for r in result["configs"]:
        if "skipped" in r:
            lines.append(f"{r['name']:28} skipped: {r['skipped']}")
            continue
        lines.append(f"{r['name']:28} {r['nfe']:>4} {r['seconds_per_sticker']:>9.2f} "
                     f"{r.get(f'seconds_per_sticker_batch{b}', r['seconds_per_sticker']):>9.2f} "
                     f"{r['peak_memory_mb']:>8.0f} "
                     f"{r.get('speedup_vs_naive', float('nan')):>7.2f} {r['floor_ratio']:>6.2f}")
    for key, row in result.get("decoder", {}).items():
        if key.endswith("px"):
            lines.append(f"reference decoder @{key}: {row['reference_s']:.3f} s/sticker vs {row['plain_s']:.3f} s "
                         f"decode-and-upscale ({row.get('share_of_sticker', float('nan')):.0%} of a sticker)")
    if "motion" in result:
        from .motion_bench import format_motion

        naive = next((r for r in result["configs"] if r["name"] == "naive" and "seconds_per_sticker" in r), None)
        lines.append(format_motion(result["motion"], naive["seconds_per_sticker"] if naive else None))
    return "\n".join(lines)
