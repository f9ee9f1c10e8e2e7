"""RGBA VAE: diffusers AutoencoderKL with 4 in/out channels (RGB + alpha) and 8 latent channels.

Alpha convention: the VAE sees **premultiplied** RGBA in [-1, 1]. Premultiplying zeroes the colour
of fully transparent pixels, whose straight RGB is arbitrary (often garbage in real files); the VAE
would otherwise spend capacity on colours nobody sees, and soft edges would bleed. The public
`encode`/`decode` take and return **straight** RGBA in [0, 1]; `decode` un-premultiplies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from torch import nn

from ..config import VAEConfig
from ..rgba import premultiply_tensor, unpremultiply_tensor


class RGBAVAE(nn.Module):
    """Encodes/decodes RGBA frames (N, 4, H, W) or videos (B, 4, T, H, W) to/from scaled latents."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n = len(cfg.block_out_channels)
        self.model = AutoencoderKL(
            in_channels=4, out_channels=4, latent_channels=cfg.latent_channels,
            down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
            norm_num_groups=cfg.norm_num_groups,
        )

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.cfg.block_out_channels) - 1)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim not in (4, 5) or x.shape[1] != 4:
            raise ValueError(f"frames shape {tuple(x.shape)}: expected (N, 4, H, W) or (B, 4, T, H, W) RGBA")
        if x.shape[-1] % self.downsample or x.shape[-2] % self.downsample:
            raise ValueError(f"frame size {tuple(x.shape[-2:])}: expected multiples of {self.downsample}")

    def encode_dist(self, rgba: torch.Tensor):
        """(N, 4, H, W) straight RGBA in [0, 1] -> diffusers DiagonalGaussianDistribution (unscaled)."""
        x = premultiply_tensor(rgba) * 2 - 1
        return self.model.encode(x).latent_dist

    def latent(self, rgba: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None,
               dist=None):
        """Unscaled latents (N, C, h, w): the encoder's, with the last `colour_hint_channels` replaced by
        the premultiplied RGB averaged over each f x f cell.

        Why: our small CPU-trained encoders learned shape, alpha and luminance fast but, after 7k steps,
        still mapped red and blue to nearly the same latent (reconstructions came out beige). A fixed
        low-resolution colour hint hands the decoder the cell colours directly; the learned channels
        carry the detail. The hint is deterministic, so the diffusion model still sees 8 channels."""
        dist = dist if dist is not None else self.encode_dist(rgba)
        z = dist.sample(generator) if sample else dist.mode()
        k = self.cfg.colour_hint_channels
        if k:
            hint = F.avg_pool2d(premultiply_tensor(rgba)[:, :k] * 2 - 1, self.downsample)
            z = torch.cat([z[:, : z.shape[1] - k], hint], dim=1)
        return z

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latents -> premultiplied RGBA in [-1, 1] (training loss works here)."""
        return self.model.decode(z).sample

    def encode(self, rgba: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None):
        """Straight RGBA in [0, 1] -> scaled latents; videos keep their (B, C, T, h, w) layout."""
        self._check(rgba)
        if rgba.ndim == 5:
            b, _, t, h, w = rgba.shape
            z = self.encode(rgba.transpose(1, 2).reshape(b * t, 4, h, w), sample, generator)
            return z.reshape(b, t, *z.shape[1:]).transpose(1, 2)
        return self.latent(rgba, sample, generator) * self.cfg.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents (N, C, h, w) or (B, C, T, h, w) -> straight RGBA in [0, 1]."""
        if z.ndim == 5:
            b, c, t, h, w = z.shape
            x = self.decode(z.transpose(1, 2).reshape(b * t, c, h, w))
            return x.reshape(b, t, *x.shape[1:]).transpose(1, 2)
        if z.shape[1] != self.cfg.latent_channels:
            raise ValueError(f"latents have {z.shape[1]} channels: expected {self.cfg.latent_channels}")
        x = self.decode_raw(z / self.cfg.scaling_factor)
        return unpremultiply_tensor(((x + 1) / 2).clamp(0, 1))
