"""Stage `decoder`: train the reference decoder's fusion net (models/decoder.py); the VAE stays frozen.

A batch: clips from a `ClipSource` at full resolution (256/512 px). The conditioning frame is the
reference; the latents are the VAE encoding of every frame at the model canvas (128 px) plus a little
Gaussian noise on the non-conditioning frames (which the sampler anchors exactly), so the decoder learns
to repair generation errors rather than only copy perfect latents. The frozen parts (VAE decode, DIS
flow, warping) run in `make_batch`; `forward` runs only the fusion net.

Loss, alpha-aware and with no downloaded network: Charbonnier on composites over random background
colours + Sobel gradient L1 + FFT amplitude L1 (the focal frequency idea without its weighting).
"""

from __future__ import annotations

import random
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.decoder import ReferenceDecoder, decode_low, dense_flow, resize_premultiplied, warp_reference
from ..models.vae import RGBAVAE
from ..motion.procedural import MOTIONS, animate_still
from ..rgba import premultiply_tensor as premultiply


class ClipSource(Protocol):
    """Real or procedural clips: frames uint8 (T, H, W, 4) straight RGBA at full size, cond index."""

    def clip(self, gen: torch.Generator) -> tuple[np.ndarray, int]: ...


class ProceduralClipSource:
    """Clips of stills doing procedural motions (motion/procedural.py), `frames` frames `spacing` apart
    on a `loop`-frame loop, conditioning frame `cond` (None: random)."""

    def __init__(self, stills: list[np.ndarray], size: int = 256, frames: int = 8, loop: int = 48,
                 spacing: int = 4, cond: int | None = 3) -> None:
        self.stills, self.size, self.frames = stills, size, frames
        self.loop, self.spacing, self.cond = loop, spacing, cond

    def clip(self, gen: torch.Generator) -> tuple[np.ndarray, int]:
        pick = torch.randint(1 << 30, (4,), generator=gen).tolist()
        still = self.stills[pick[0] % len(self.stills)]
        motion = sorted(MOTIONS)[pick[1] % len(MOTIONS)]
        loop = animate_still(still, motion, self.size, self.loop, seed=pick[2])  # (loop, S, S, 4)
        idx = [(pick[3] + i * self.spacing) % self.loop for i in range(self.frames)]
        cond = self.cond if self.cond is not None else pick[3] % self.frames
        return loop[idx], cond


def sobel(x: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradients (N, C, H, W) -> (N, 2C, H, W)."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device) / 8
    c = x.shape[1]
    w = torch.stack([k, k.T])[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3): x and y per channel
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, groups=c)


def decoder_loss(out: torch.Tensor, target: torch.Tensor, bg: torch.Tensor, eps: float = 1e-3
                 ) -> tuple[torch.Tensor, dict]:
    """Premultiplied output and target (N, 4, H, W), background colours (N, 3) -> loss, logs."""
    comp = out[:, :3] + (1 - out[:, 3:]) * bg[:, :, None, None]  # over a random colour: alpha matters
    tcomp = target[:, :3] + (1 - target[:, 3:]) * bg[:, :, None, None]
    x, y = torch.cat([comp, out[:, 3:]], 1), torch.cat([tcomp, target[:, 3:]], 1)
    charb = torch.sqrt((x - y) ** 2 + eps**2).mean()
    grad = (sobel(x) - sobel(y)).abs().mean()
    freq = (torch.fft.rfft2(x, norm="ortho").abs() - torch.fft.rfft2(y, norm="ortho").abs()).abs().mean()
    loss = charb + grad + 0.1 * freq
    return loss, {"charbonnier": charb.detach(), "sobel": grad.detach(), "fft": freq.detach()}


class DecoderTask(nn.Module):
    """The reference decoder's training task (protocol of training/loop.py's Task)."""

    def __init__(self, vae: RGBAVAE, decoder: ReferenceDecoder, source: ClipSource, batch_size: int = 2,
                 frames_per_clip: int = 4, canvas: int = 128, latent_noise: float = 0.1) -> None:
        super().__init__()
        self.vae, self.decoder, self.source = vae.eval().requires_grad_(False), decoder, source
        self.batch_size, self.frames_per_clip, self.canvas, self.latent_noise = (
            batch_size, frames_per_clip, canvas, latent_noise)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())

    @torch.no_grad()
    def make_batch(self, gen: torch.Generator) -> dict:
        """N = batch_size * frames_per_clip frames: plain_low (N, 4, 128, 128), warped/target (N, 4, S, S)
        premultiplied, flow (N, 2, 128, 128), bg (N, 3)."""
        plain, warped, flow, target = [], [], [], []
        for _ in range(self.batch_size):
            frames, cond = self.source.clip(gen)
            video = torch.from_numpy(frames).float().div(255).permute(3, 0, 1, 2)[None]  # (1, 4, T, S, S)
            small = resize_premultiplied(premultiply(video[0].transpose(0, 1)), self.canvas)  # (T, 4, 128, 128)
            rgba_small = torch.cat([small[:, :3] / small[:, 3:].clamp_min(1e-3), small[:, 3:]], 1).clamp(0, 1)
            z = self.vae.encode(rgba_small.transpose(0, 1)[None])  # (1, C, T, h, w)
            sigma = self.latent_noise * float(torch.rand((), generator=gen))
            noise = torch.randn(z.shape, generator=gen) * sigma
            noise[:, :, cond] = 0  # the sampler anchors the conditioning frame exactly
            low = decode_low(self.vae, z + noise)  # (1, 4, T, 128, 128)
            fl = dense_flow(low, cond, self.decoder.cfg.flow_preset)  # (1, 2, T, 128, 128)
            wp = warp_reference(video[:, :, cond], fl)  # (1, 4, T, S, S)
            # The conditioning frame plus random others: the gate must learn both "copy" and "repair".
            others = [i for i in range(frames.shape[0]) if i != cond]
            keep = [cond] + [others[i] for i in torch.randperm(len(others), generator=gen)[: self.frames_per_clip - 1]]
            plain.append(low[0, :, keep].transpose(0, 1))
            flow.append(fl[0, :, keep].transpose(0, 1))
            warped.append(wp[0, :, keep].transpose(0, 1))
            target.append(premultiply(video[0, :, keep].transpose(0, 1)))
        n = sum(len(p) for p in plain)
        return {"plain_low": torch.cat(plain), "warped": torch.cat(warped), "flow": torch.cat(flow),
                "target": torch.cat(target), "bg": torch.rand(n, 3, generator=gen)}

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        out = self.decoder.fuse(batch["plain_low"], batch["warped"], batch["flow"])
        return decoder_loss(out, batch["target"], batch["bg"])


def drawn_stills(n: int = 4, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """Flat-style test stills (H, W, 4) uint8 with fine detail (outlines, stripes, dots), drawn with PIL."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        fill = tuple(rng.randrange(40, 256) for _ in range(3)) + (255,)
        m = size // 8
        d.ellipse([m, m, size - m, size - m], fill=fill, outline=(20, 20, 20, 255), width=max(2, size // 64))
        for k in range(rng.randrange(3, 7)):  # stripes and dots: detail the VAE cannot keep at 128 px
            y = m + (k + 1) * (size - 2 * m) // 8
            d.line([2 * m, y, size - 2 * m, y], fill=(255, 255, 255, 255), width=max(1, size // 128))
        for _ in range(6):
            x, y = rng.randrange(3 * m, size - 3 * m), rng.randrange(3 * m, size - 3 * m)
            r = rng.randrange(2, 1 + size // 32)
            d.ellipse([x - r, y - r, x + r, y + r], fill=(10, 10, 10, 255))
        out.append(np.asarray(im))
    return out
