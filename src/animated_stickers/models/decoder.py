"""Reference-guided decoding: "warp at full size, refine at low resolution" (issue 11).

The video model's latents decode to 128 px frames that lose the sticker's fine detail and style. The
conditioning frame is the VAE reconstruction of the sticker, so dense flow from each decoded frame to
the decoded conditioning frame says where each pixel came from in the sticker; warping the sticker
itself at full size (256-512 px) with that flow carries its own detail into every frame.

    plain_up = upsample(VAE decode at 128 px)               today's output (premultiplied)
    warped   = remap(reference at H, flow upsampled to H)   the sticker moved like frame t
    m, r     = fusion net at low resolution on [plain, warped, |plain - warped|, flow]
    out      = plain_up + up(m) * (warped - plain_up) + up(r)

The fusion net's last conv is zero-initialised and m = clamp(logits, 0, 1), so a fresh decoder gives
exactly `decode_plain`. Only the fusion net trains (training/decoder_task.py); flow (OpenCV DIS) and
warping (cv2.remap) are fixed, cheap and not differentiated. Everything is premultiplied inside so
transparent pixels carry no colour and edges do not fringe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..flow import DEFAULT_PRESET, DIS_PRESETS, flows_to_frame, warp_along
from ..rgba import premultiply_tensor as premultiply
from ..rgba import unpremultiply_tensor as unpremultiply
from .vae import RGBAVAE


@dataclass
class DecoderConfig:
    """The reference decoder's shape; stored as config.json's "decoder" entry."""

    channels: int = 32  # fusion net width
    work_size: int = 64  # fusion net resolution: a gate is smooth, and 128 px costs 4x (1.4 s vs 0.25 s / 8 frames)
    flow_preset: str = DEFAULT_PRESET  # OpenCV DIS preset (DIS_PRESETS)
    residual: bool = True  # also predict a small low-resolution RGBA correction

    def to_dict(self) -> dict:
        return asdict(self)


def _valid(x: torch.Tensor) -> torch.Tensor:
    """Clamp premultiplied RGBA (N, 4, H, W) to valid values: [0, 1] and colour <= alpha."""
    x = x.clamp(0, 1)
    return torch.cat([torch.minimum(x[:, :3], x[:, 3:4]), x[:, 3:4]], dim=1)


def resize_premultiplied(x: torch.Tensor, size: int) -> torch.Tensor:
    """Premultiplied (N, C, h, w) -> (N, C, size, size): bicubic up, antialiased area-like down."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    up = size > x.shape[-1]
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=not up)


def _frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W)."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def _video(x: torch.Tensor, b: int) -> torch.Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W)."""
    n, c, h, w = x.shape
    return x.reshape(b, n // b, c, h, w).transpose(1, 2)


def _cond_list(cond_index: torch.Tensor | int, b: int) -> list[int]:
    if isinstance(cond_index, int):
        return [cond_index] * b
    return [int(i) for i in torch.as_tensor(cond_index).reshape(-1).expand(b)]


@torch.no_grad()
def decode_low(vae: RGBAVAE, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents (B, C, T, h, w) -> premultiplied RGBA (B, 4, T, 8h, 8w) in [0, 1] (VAE native size)."""
    b = latents.shape[0]
    straight = vae.decode(latents)  # (B, 4, T, H0, W0), today's decode
    return _video(premultiply(_frames(straight).float()), b)


def upsample_plain(low: torch.Tensor, size: int) -> torch.Tensor:
    """Premultiplied (B, 4, T, h, w) -> premultiplied (B, 4, T, size, size): today's decode-and-upscale."""
    return _video(_valid(resize_premultiplied(_frames(low), size)), low.shape[0])


def decode_plain(vae: RGBAVAE, latents: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Decode at the native size and upscale premultiplied: straight RGBA (B, 4, T, size, size)."""
    low = decode_low(vae, latents)
    out = upsample_plain(low, size or low.shape[-1])
    return _video(unpremultiply(_frames(out)), low.shape[0])


def dense_flow(low: torch.Tensor, cond_index: torch.Tensor | int, preset: str = DEFAULT_PRESET) -> torch.Tensor:
    """Backward flow (B, 2, T, h, w) in low-res pixels (dx, dy): frame t at x looks like the conditioning
    frame at x + flow. Zero at the conditioning frame itself (exactly)."""
    arr = low.permute(0, 2, 3, 4, 1).float().cpu().numpy()  # (B, T, h, w, 4)
    flow = np.stack([flows_to_frame(a, c, preset) for a, c in zip(arr, _cond_list(cond_index, len(arr)))])
    return torch.from_numpy(flow).permute(0, 4, 1, 2, 3).contiguous()  # (B, T, h, w, 2) -> (B, 2, T, h, w)


def warp_reference(reference: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Straight RGBA reference (B, 4, H, W) + low-res flow (B, 2, T, h, w) -> the reference warped into
    every frame, premultiplied (B, 4, T, H, W). The flow is resized to H and its vectors scaled."""
    ref = premultiply(reference.float()).permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 4)
    fl = flow.permute(0, 2, 3, 4, 1).cpu().numpy()  # (B, T, h, w, 2)
    out = np.stack([warp_along(r, f) for r, f in zip(ref, fl)])  # (B, T, H, W, 4)
    warped = torch.from_numpy(out).permute(0, 4, 1, 2, 3)  # (B, 4, T, H, W)
    return _video(_valid(_frames(warped)), reference.shape[0])


class ReferenceDecoder(nn.Module):
    """The learned part: a small fusion net at `work_size` predicting the gate m (and a residual)."""

    IN_CHANNELS = 4 + 4 + 4 + 2  # plain, warped, |plain - warped|, flow

    def __init__(self, cfg: DecoderConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DecoderConfig()
        if cfg.flow_preset not in DIS_PRESETS:
            raise ValueError(f"flow_preset '{cfg.flow_preset}': expected one of {', '.join(DIS_PRESETS)}")
        c = cfg.channels
        self.net = nn.Sequential(  # dilations 1, 2, 4: a ~15 px receptive field at work_size
            nn.Conv2d(self.IN_CHANNELS, c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=2, dilation=2), nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=4, dilation=4), nn.SiLU(),
            nn.Conv2d(c, 1 + 4 * cfg.residual, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)  # a fresh decoder is exactly decode_plain
        nn.init.zeros_(self.net[-1].bias)

    def gate(self, plain_low: torch.Tensor, warped: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Frames (N, 4, h, w) premultiplied plain decode, (N, 4, H, W) warped reference, (N, 2, h, w)
        flow in low-res pixels -> gate m (N, 1, s, s) in [0, 1] and residual (N, 4, s, s) or None at
        s = work_size."""
        s = self.cfg.work_size
        p = resize_premultiplied(plain_low, s)
        wl = resize_premultiplied(warped, s)
        fl = F.interpolate(flow, size=(s, s), mode="bilinear", align_corners=False) * (s / flow.shape[-1])
        x = torch.cat([p * 2 - 1, wl * 2 - 1, (p - wl).abs() * 4, fl / 8], dim=1)  # (N, 14, s, s), ~unit scale
        y = self.net(x)
        return y[:, :1].clamp(0, 1), (y[:, 1:] if self.cfg.residual else None)

    def fuse(self, plain_low: torch.Tensor, warped: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Per frame (N, ...) as in `gate` -> premultiplied output (N, 4, H, W) at the warped size."""
        size = warped.shape[-1]
        plain_up = _valid(resize_premultiplied(plain_low, size))
        m, r = self.gate(plain_low, warped, flow)
        out = plain_up + F.interpolate(m, size=warped.shape[-2:], mode="bilinear", align_corners=False) \
            * (warped - plain_up)
        if r is not None:
            out = out + F.interpolate(r, size=warped.shape[-2:], mode="bilinear", align_corners=False)
        return _valid(out)

    def forward(self, plain_low: torch.Tensor, warped: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return self.fuse(plain_low, warped, flow)

    def fuse_straight(self, plain_low: torch.Tensor, warped: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """`fuse` as the sampling engines run it (sampling/finish.py; the compiled "fuse" graph): the warped
        sticker clamped to valid premultiplied values first, straight RGBA (N, 4, H, W) out."""
        return unpremultiply(self.fuse(plain_low, _valid(warped), flow))

    @torch.no_grad()
    def decode(self, vae: RGBAVAE, latents: torch.Tensor, reference: torch.Tensor,
               cond_index: torch.Tensor | int) -> torch.Tensor:
        """Latents (B, C, T, h, w) + straight reference (B, 4, H, W) in [0, 1] -> straight RGBA frames
        (B, 4, T, H, W) at the reference's size."""
        b = latents.shape[0]
        low = decode_low(vae, latents)  # (B, 4, T, 128, 128)
        flow = dense_flow(low, cond_index, self.cfg.flow_preset)  # (B, 2, T, 128, 128)
        warped = warp_reference(reference, flow)  # (B, 4, T, H, W)
        dtype = next(self.parameters()).dtype
        out = self.fuse(_frames(low).to(dtype), _frames(warped).to(dtype), _frames(flow).to(dtype))
        return _video(unpremultiply(out.float()), b)
