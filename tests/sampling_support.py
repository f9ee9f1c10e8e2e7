"""Shared helpers for tests/test_sampling_*.py and tests/test_diffusion_*.py: tiny models, stickers."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from PIL import Image

from animated_stickers.config import model_config
from animated_stickers.models.checkpoint import StickerModel

# 64 px canvas, 8x8x8 latents, a 2-level UNet of ~0.5M parameters: fast on one core.
TINY = ["resolution=64", "vae.block_out_channels=[16,16,16,16]", "vae.norm_num_groups=8",
        "unet.block_out_channels=[32,32]", "unet.attention_blocks=[false,true]", "unet.head_dim=16",
        "unet.norm_num_groups=8", "unet.cross_attention_dim=32"]


@contextlib.contextmanager
def tiny_server(settings):
    """A real HTTP server (`stickers serve`'s app) around a random TINY model, on one torch thread."""
    from animated_stickers.sampling.pipeline import AnimatePipeline
    from animated_stickers.serve.app import create_app
    from animated_stickers.serve.server import ServerThread

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        pipe = AnimatePipeline(StickerModel.create(model_config("tiny", overrides=TINY)).eval())
        with ServerThread(create_app(pipe, settings)) as srv:
            yield srv
    finally:
        torch.set_num_threads(threads)


def tiny_model(seed: int = 0, video: bool = True, perturb: bool = True, overrides: list[str] | None = None
               ) -> StickerModel:
    """A random tiny model; `perturb` makes the zero-initialised parts (temporal layers, image channels
    of conv_in) non-zero so that every input and every frame really changes the output."""
    torch.manual_seed(seed)
    model = StickerModel.create(model_config("tiny", overrides=TINY + (overrides or [])), video=video).eval()
    if perturb:
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in model.unet.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def sticker(w: int = 96, h: int = 64, seed: int = 0) -> Image.Image:
    """A non-square RGBA sticker: a coloured ellipse with soft edges on transparency."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((xx - w / 2) / (0.4 * w)) ** 2 + ((yy - h / 2) / (0.4 * h)) ** 2
    rng = np.random.default_rng(seed)
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = (yy * 255 / h).astype(np.uint8)
    rgba[..., 2] = rng.integers(0, 255)
    rgba[..., 3] = (np.clip((1 - r) * 8, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


@pytest.fixture(autouse=True)
def one_thread():
    """The CPU is shared (2 cores, a training run beside us): one torch thread per test."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run_cli(*args):
    """`stickers ARGS...` in-process (Typer's runner), every argument as a string."""
    from typer.testing import CliRunner

    from animated_stickers.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(r) -> str:
    """The single `error:` line of a failed command (exit code 2, no traceback)."""
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]
