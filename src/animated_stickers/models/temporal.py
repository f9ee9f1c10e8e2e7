"""Temporal layers that inflate a 2D UNet to video (paper 2.1), all identity at initialisation.

Inside the UNet, frames are folded into the batch: (B*T, C, H, W), batch-major, i.e. row b*T + t is
frame t of video b. Every temporal layer unfolds that with the frame count kept in a `FrameContext`
shared by all layers of one model (set once per forward by the video UNet).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from diffusers.models.transformers.transformer_2d import Transformer2DModel, Transformer2DModelOutput
from torch import nn


class FrameContext:
    """Mutable holder of the current frame count T, shared by a model's temporal layers."""

    def __init__(self) -> None:
        self.num_frames = 1


class TemporalConv(nn.Module):
    """Residual 1D conv over time: x + Conv_t(SiLU(GN(x))); the conv is zero-initialised -> identity.

    `padding="circular"` wraps time (a loop has no first or last frame); only time is padded.
    """

    def __init__(self, channels: int, kernel: int, groups: int, frames: FrameContext,
                 padding: str = "circular") -> None:
        super().__init__()
        self.frames = frames
        self.norm = nn.GroupNorm(math.gcd(groups, channels), channels)
        self.conv = nn.Conv3d(channels, channels, (kernel, 1, 1), padding=(kernel // 2, 0, 0), padding_mode=padding)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.frames.num_frames
        bt, c, h, w = x.shape
        v = x.reshape(bt // t, t, c, h, w).transpose(1, 2)  # (B, C, T, H, W)
        # GroupNorm over (C, T, H, W) per video: statistics see the whole clip.
        dv = self.conv(F.silu(self.norm(v)))
        return x + dv.transpose(1, 2).reshape(bt, c, h, w)


class TemporalAttention(nn.Module):
    """Residual self-attention across frames at every pixel; output projection zero-initialised.

    `positions="none"` adds no frame positions: attention is then equivariant to rolling the clip,
    and frame order comes from the (circular) temporal convs. "learned" keeps an absolute table.
    """

    def __init__(self, channels: int, head_dim: int, max_frames: int, frames: FrameContext,
                 positions: str = "none") -> None:
        super().__init__()
        self.frames = frames
        self.norm = nn.LayerNorm(channels)
        self.pos = None
        if positions == "learned":  # sinusoidal start, learned
            pos = torch.arange(max_frames)[:, None] / (10000 ** (torch.arange(0, channels, 2) / channels))[None]
            table = torch.zeros(max_frames, channels)
            table[:, 0::2], table[:, 1::2] = torch.sin(pos), torch.cos(pos[:, : channels // 2])
            self.pos = nn.Parameter(0.1 * table)
        self.attn = Attention(query_dim=channels, heads=channels // head_dim, dim_head=head_dim, bias=False,
                              out_bias=True, processor=AttnProcessor2_0())
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.frames.num_frames
        bt, c, h, w = x.shape
        # (B*T, C, H, W) -> (B*H*W, T, C): each pixel's sequence of frames.
        seq = self.norm(x.reshape(bt // t, t, c, h * w).permute(0, 3, 1, 2).reshape(-1, t, c))
        if self.pos is not None:
            if t > self.pos.shape[0]:
                raise ValueError(f"{t} frames: expected at most unet.max_frames={self.pos.shape[0]}")
            seq = seq + self.pos[:t]
        out = self.attn(seq)
        out = out.reshape(bt // t, h * w, t, c).permute(0, 2, 3, 1).reshape(bt, c, h, w)
        return x + out


class InflatedConv2d(nn.Conv2d):
    """A ResNet block's 2D conv followed by a temporal conv; keeps the 2D weight names unchanged."""

    temporal: TemporalConv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(super().forward(x))


class InflatedTransformer2D(Transformer2DModel):
    """A spatial transformer followed by temporal attention; keeps the 2D weight names unchanged."""

    temporal: TemporalAttention

    def forward(self, hidden_states, *args, return_dict: bool = True, **kwargs):
        out = super().forward(hidden_states, *args, return_dict=False, **kwargs)[0]
        out = self.temporal(out)
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)


class ContextOnceAttnProcessor:
    """Cross-attention whose text K/V are projected once per video, then shared by its T frames.

    The naive way repeats the (B, L, D) context T times and projects B*T copies (paper 3.3.1). Here
    the frames are folded into the query axis instead: queries (B*T, N, C) -> (B, T*N, C) attend to
    the B contexts. Softmax runs per query, so this equals the naive result exactly.
    """

    def __init__(self, frames: FrameContext) -> None:
        self.frames = frames
        self.fallback = AttnProcessor2_0()

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, *args, **kwargs) -> torch.Tensor:
        t = self.frames.num_frames
        bt, n, c = hidden_states.shape
        if (encoder_hidden_states is None or encoder_hidden_states.shape[0] == bt or attention_mask is not None
                or attn.spatial_norm is not None or attn.group_norm is not None):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        b = bt // t
        if encoder_hidden_states.shape[0] != b:
            raise ValueError(f"context batch {encoder_hidden_states.shape[0]}: expected {b} (videos) or {bt} (frames)")
        ctx = attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states
        heads = attn.heads
        q = attn.to_q(hidden_states).reshape(b, t * n, heads, -1).transpose(1, 2)  # (B, h, T*N, d)
        k = attn.to_k(ctx).reshape(b, ctx.shape[1], heads, -1).transpose(1, 2)  # (B, h, L, d)
        v = attn.to_v(ctx).reshape(b, ctx.shape[1], heads, -1).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v)  # (B, h, T*N, d)
        o = o.transpose(1, 2).reshape(bt, n, heads * o.shape[-1]).to(q.dtype)
        o = attn.to_out[1](attn.to_out[0](o))
        if attn.residual_connection:
            o = o + hidden_states
        return o / attn.rescale_output_factor
