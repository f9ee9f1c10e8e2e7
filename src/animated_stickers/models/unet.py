"""The sticker UNet: a diffusers UNet2DConditionModel, optionally inflated to video, with IP2P input.

Stages (paper 2.1, 3.1): a text-to-image UNet (in = 8 latent channels) is trained first; `inflate`
then inserts identity-initialised temporal layers and widens `conv_in` with zero weights for the
8 channels of the conditioning sticker's latent (InstructPix2Pix), so the fresh video model
reproduces the image model frame by frame.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from ..config import ModelConfig, UNetConfig, cond_index_at
from .temporal import (
    ContextOnceAttnProcessor,
    FrameContext,
    InflatedConv2d,
    InflatedTransformer2D,
    TemporalAttention,
    TemporalConv,
)
from .text import encoder_dim


def build_unet2d(cfg: ModelConfig) -> UNet2DConditionModel:
    """A fresh text-to-image UNet for `cfg` (latent in/out, text cross-attention)."""
    u: UNetConfig = cfg.unet
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in u.attention_blocks)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(u.attention_blocks))
    return UNet2DConditionModel(
        sample_size=cfg.latent_size,
        in_channels=cfg.vae.latent_channels,
        out_channels=cfg.vae.latent_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=tuple(u.block_out_channels),
        layers_per_block=u.layers_per_block,
        transformer_layers_per_block=u.transformer_layers,
        # In UNet2DConditionModel `attention_head_dim` is the number of heads (diffusers naming quirk).
        attention_head_dim=tuple(c // u.head_dim for c in u.block_out_channels),
        cross_attention_dim=u.cross_attention_dim,
        norm_num_groups=u.norm_num_groups,
        use_linear_projection=True,
        time_cond_proj_dim=GUIDANCE_EMBED_DIM if u.guidance_embedding else None,
    )


GUIDANCE_EMBED_DIM = 128  # 64 sinusoidal features per guidance scale (sigma_I, sigma_T)


def guidance_features(scales: torch.Tensor) -> torch.Tensor:
    """(B, 2) guidance scales (sigma_I, sigma_T) -> (B, GUIDANCE_EMBED_DIM) sinusoidal features, embedded
    like a timestep (Meng et al. 2023); x100 spreads the useful range 1-10 over the frequencies."""
    from diffusers.models.embeddings import get_timestep_embedding

    half = GUIDANCE_EMBED_DIM // 2
    feats = [get_timestep_embedding(scales[:, k].float() * 100, half, flip_sin_to_cos=True, downscale_freq_shift=0)
             for k in range(2)]
    return torch.cat(feats, dim=1)


class ContextProjector(nn.Module):
    """Projects each frozen text encoder's tokens to the cross-attention width; concatenates on tokens."""

    def __init__(self, dims: list[int], width: int) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, width)) for d in dims)

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        if len(states) != len(self.proj):
            raise ValueError(f"{len(states)} text encoder outputs: expected {len(self.proj)}")
        return torch.cat([p(s) for p, s in zip(self.proj, states)], dim=1)  # (B, sum L_i, width)


class StickerUNet(nn.Module):
    """Denoiser network eps/v(z_t, t, c_I, c_T) on video latents (B, C, T, H, W).

    `inflated=False` is the text-to-image model (T must be 1, no image input). After `inflate()`,
    `image_latent` (B, C, H, W) is repeated over T and concatenated on channels (IP2P); pass zeros
    for the null image condition.
    """

    def __init__(self, cfg: ModelConfig, unet2d: UNet2DConditionModel | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.unet = unet2d if unet2d is not None else build_unet2d(cfg)
        self.context_proj = ContextProjector([encoder_dim(e) for e in cfg.text.encoders],
                                             cfg.unet.cross_attention_dim)
        self.frames = FrameContext()
        self.inflated = False
        self.context_once = cfg.context_once

    # ------------------------------------------------------------------ inflation
    def inflate(self) -> StickerUNet:
        """Insert temporal conv/attention (identity at init) and widen conv_in for the image latent."""
        if self.inflated:
            return self
        u, f = self.cfg.unet, self.frames
        for module in list(self.unet.modules()):
            if isinstance(module, ResnetBlock2D):
                for conv in (module.conv1, module.conv2):
                    conv.__class__ = InflatedConv2d  # same weights/names; adds a temporal step
                    conv.temporal = TemporalConv(conv.out_channels, u.temporal_kernel, u.norm_num_groups, f,
                                                 u.temporal_padding)
            elif isinstance(module, Transformer2DModel) and u.temporal_attention:
                module.__class__ = InflatedTransformer2D
                module.temporal = TemporalAttention(module.inner_dim, u.head_dim, u.max_frames, f,
                                                    u.temporal_positions)
        # The sticker's latent (IP2P) and, with cond_mask, one channel marking the conditioning frame.
        self._widen_conv_in(self.cfg.vae.latent_channels + int(u.cond_mask))
        self.inflated = True
        self.set_context_once(self.context_once)
        return self

    @property
    def guidance_embedded(self) -> bool:
        """Whether (sigma_I, sigma_T) are inputs (a guidance-distilled student)."""
        return self.unet.time_embedding.cond_proj is not None

    def add_guidance_embedding(self) -> StickerUNet:
        """Add the guidance-scale input, zero-initialised: the result still equals this network (the
        teacher's conditional branch) until trained. Set `unet.guidance_embedding` in the config too."""
        te = self.unet.time_embedding
        if te.cond_proj is None:
            te.cond_proj = nn.Linear(GUIDANCE_EMBED_DIM, te.linear_1.in_features, bias=False)
            nn.init.zeros_(te.cond_proj.weight)
            self.unet.register_to_config(time_cond_proj_dim=GUIDANCE_EMBED_DIM)
        return self

    def _widen_conv_in(self, extra: int) -> None:
        old = self.unet.conv_in
        new = nn.Conv2d(old.in_channels + extra, old.out_channels, old.kernel_size, padding=old.padding)
        with torch.no_grad():
            new.weight.zero_()  # zero weights for the image-latent channels: T2I behaviour kept
            new.weight[:, : old.in_channels] = old.weight
            new.bias.copy_(old.bias)
        self.unet.conv_in = new
        self.unet.register_to_config(in_channels=new.in_channels)

    def set_context_once(self, enabled: bool) -> None:
        """Switch cross-attention between K/V-once-per-video and the naive per-frame repeat.

        The processor handles both: a (B*T, L, D) context takes the stock path (naive)."""
        self.context_once = enabled
        if self.inflated:
            for name, module in self.unet.named_modules():
                if name.endswith("attn2"):
                    module.set_processor(ContextOnceAttnProcessor(self.frames))

    # ------------------------------------------------------------------ forward
    @property
    def in_channels(self) -> int:
        return self.unet.config.in_channels

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, text_states: list[torch.Tensor] | torch.Tensor,
                image_latent: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None,
                guidance: torch.Tensor | None = None) -> torch.Tensor:
        """sample (B, C, T, H, W), timestep (B,) or scalar, text_states per encoder (B, L_i, D_i)
        or an already projected context (B, L, D); cond_mask (B, T), 1 at the conditioning frame
        (default: `cfg.cond_frame`; see `cond_mask`); guidance (B, 2) = (sigma_I, sigma_T) for a
        guidance-embedded student (default 1, 1); returns the prediction (B, C, T, H, W)."""
        if sample.ndim != 5:
            raise ValueError(f"sample shape {tuple(sample.shape)}: expected (B, C, T, H, W)")
        b, c, t, h, w = sample.shape
        latent_c = self.cfg.vae.latent_channels
        if c != latent_c:
            raise ValueError(f"sample has {c} channels: expected {latent_c} latent channels")
        if not self.inflated and t != 1:
            raise ValueError(f"{t} frames given to a text-to-image UNet: expected 1 (inflate it for video)")
        if self.inflated:
            if image_latent is None:
                image_latent = torch.zeros_like(sample[:, :, 0])
            if image_latent.shape != (b, c, h, w):
                raise ValueError(f"image_latent shape {tuple(image_latent.shape)}: expected {(b, c, h, w)}")
            # IP2P: the sticker latent cloned over time, appended on channels.
            parts = [sample, image_latent[:, :, None].expand(-1, -1, t, -1, -1)]
            if self.cfg.unet.cond_mask:
                if cond_mask is None:
                    cond_mask = make_cond_mask(b, t, default_cond_index(self.cfg, t), sample.device)
                if cond_mask.shape != (b, t):
                    raise ValueError(f"cond_mask shape {tuple(cond_mask.shape)}: expected {(b, t)}")
                # (B, T) -> (B, 1, T, H, W): one channel, constant over each frame.
                parts.append(cond_mask.to(sample.dtype)[:, None, :, None, None].expand(-1, -1, -1, h, w))
            sample = torch.cat(parts, dim=1)
        context = self.context_proj(text_states) if isinstance(text_states, (list, tuple)) else text_states
        timestep = torch.as_tensor(timestep, device=sample.device)
        if timestep.ndim == 0:
            timestep = timestep.expand(b)
        # (B, C, T, H, W) -> (B*T, C, H, W), batch-major (see models/temporal.py).
        x = sample.transpose(1, 2).reshape(b * t, sample.shape[1], h, w)
        if not (self.inflated and self.context_once):
            context = context.repeat_interleave(t, dim=0)  # naive: one context copy per frame
        self.frames.num_frames = t
        cond_emb = None
        if self.guidance_embedded:
            guidance = torch.ones(b, 2, device=sample.device) if guidance is None else guidance.reshape(b, 2)
            cond_emb = guidance_features(guidance).to(sample.device).repeat_interleave(t, dim=0)  # (B*T, E)
        out = self.unet(x, timestep.repeat_interleave(t), encoder_hidden_states=context,
                        timestep_cond=cond_emb).sample
        return out.reshape(b, t, c, h, w).transpose(1, 2)


def default_cond_index(cfg: ModelConfig, num_frames: int) -> int:
    """The model's conditioning frame for a clip of `num_frames`: its own index at its own length,
    else the middle frame by the same rule (3 of 8, 7 of 16)."""
    return cond_index_at(cfg.num_frames, cfg.cond_frame, num_frames)


def make_cond_mask(batch: int, num_frames: int, cond_index: int | torch.Tensor, device=None) -> torch.Tensor:
    """(B, T) float mask, 1 at each video's conditioning frame; cond_index is an int or (B,) ints."""
    idx = torch.as_tensor(cond_index, device=device).reshape(-1).expand(batch)
    return (torch.arange(num_frames, device=device)[None] == idx[:, None]).float()


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())
