"""`stickers bench --resolutions 128,256`: what a larger native canvas costs, measured in one run.

For each resolution, a random model of the same architecture (only `resolution` changes, so the
latents grow with it) is timed on the two things the canvas size drives:
- one training step of the video stage: UNet forward + backward on a batch of 8-frame clips;
- one sticker sampled end to end (DPM-Solver 15 steps, adaptive guidance k=8, VAE encode/decode).
Ratios are against the first resolution. Weights are random: the cost of a forward does not depend
on their values, and this lets the comparison run without trained weights at every size.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from ..config import ConfigError, SamplingConfig, model_config
from ..errors import UserError
from ..models.checkpoint import StickerModel
from .pipeline import AnimatePipeline


def median_time(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls of fn after one warm-up call."""
    fn()  # warm-up (allocations, kernels chosen)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def resolution_cost(resolutions: list[int], repeats: int = 1, train_batch: int = 4,
                    preset: str = "tiny") -> dict:
    """{'rows': [{resolution, latent, train_step_s, sample_s, ...ratios}], ...} for each resolution."""
    if not resolutions:
        raise UserError("--resolutions: expected a comma-separated list such as 128,256")
    rows = []
    for res in resolutions:
        try:
            cfg = model_config(preset, overrides=[f"resolution={res}"])
        except ConfigError as e:  # a size the VAE x UNet downsampling cannot divide
            raise UserError(f"--resolutions {res}: {e}") from None
        torch.manual_seed(0)
        model = StickerModel.create(cfg)
        unet = model.unet.train()
        n, c, t = train_batch, cfg.vae.latent_channels, cfg.num_frames
        z = torch.randn(n, c, t, cfg.latent_size, cfg.latent_size)
        text = [s.float() for s in model.text(["waving"] * n)]
        steps = torch.randint(1000, (n,))

        def train_step() -> None:
            unet.zero_grad(set_to_none=True)
            F.mse_loss(unet(z, steps, text, z[:, :, cfg.cond_frame]), z).backward()

        train_s = median_time(train_step, repeats)
        unet.zero_grad(set_to_none=True)
        pipe = AnimatePipeline(model.eval())
        canvas = torch.rand(1, 4, res, res)
        params = SamplingConfig(steps=15, guided_steps=8)
        with torch.no_grad():
            sample_s = median_time(lambda: pipe.make_video(canvas, ["waving"], params), repeats)
        rows.append({"resolution": res, "latent": [c, t, cfg.latent_size, cfg.latent_size],
                     "train_step_s": round(train_s, 3), "train_batch": n, "sample_s": round(sample_s, 3)})
    for r in rows:
        r["train_step_x"] = round(r["train_step_s"] / rows[0]["train_step_s"], 2)
        r["sample_x"] = round(r["sample_s"] / rows[0]["sample_s"], 2)
    return {"preset": preset, "repeats": repeats, "threads": torch.get_num_threads(), "rows": rows}


def format_resolution_table(result: dict) -> str:
    lines = [f"{'resolution':>10} {'latent':>14} {'train step s':>12} {'x':>5} {'sample s':>9} {'x':>5}"]
    for r in result["rows"]:
        lat = "x".join(map(str, r["latent"]))
        lines.append(f"{r['resolution']:>10} {lat:>14} {r['train_step_s']:>12.2f} {r['train_step_x']:>5.2f} "
                     f"{r['sample_s']:>9.2f} {r['sample_x']:>5.2f}")
    return "\n".join(lines)
