"""The learned motion model's network (issue 28): still + text -> a spectral volume (motion/spectral.py).

A small diffusers `UNet2DConditionModel` in the space of the motion field instead of VAE latents:
  - input: the noisy normalised spectral volume (4K, s, s) concatenated on channels with the still
    (InstructPix2Pix, paper 2.1): the premultiplied RGBA still at S = f * s px, folded to (4 f^2, s, s)
    by pixel_unshuffle so the network keeps the still's detail at the field's grid; a dropped image is
    all zeros (IP2P's null image);
  - text: the project's frozen encoder (models/text.py, MiniLM) through cross-attention, and its mean
    over tokens through the timestep embedding (diffusers' "projection" class embedding), so the name
    reaches every level of the net, not only the attention ones; a dropped text is the "" encoding;
  - output: x0 ("sample", the recipe's), v or eps (the schedule is diffusion/schedules.py's, built from
    `MotionConfig` fields). x0, because the net is narrow where it starts: at patch 2 the 64 channels of noisy
    field meet a 32-channel first block, so eps or v (which must copy the noise pixel by pixel) cannot be
    predicted and the noise stays in the sample (measured: 83% of a v model's sampled field above the
    targets' spatial frequencies, 0.06% in the targets); x0 is smooth and the solver handles the noise.
A model folder is `config.json` (the MotionConfig) + `motion.safetensors`; no pickles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_path, atomic_write_text
from ..config import ConfigError, TextEncoderSpec, from_dict, to_dict
from ..errors import UserError
from ..motion.spectral import DEFAULT_SCALES, GAMMA, MOVED_THRESHOLD
from ..rgba import premultiply_tensor

SUPPORT_DILATE = 4  # px of the field's grid (64 px: 1/16 of the canvas) around the sticker in `support`
KIND = "motion"  # config.json "kind" of a motion model folder
WEIGHTS = "motion.safetensors"


@dataclass
class MotionConfig:
    """The motion model: target layout, network layout, text encoder, schedule and target scaling."""

    name: str = "motion-tiny"
    harmonics: int = 4  # K: the volume has 4K channels
    size: int = 64  # s: the spectral volume's grid
    still_size: int = 128  # S: the still's side (a multiple of `size`)
    # The UNet runs at s / patch: the volume is folded patch x patch onto channels (space-to-depth) and
    # unfolded at the output. 2 makes a 64 px field cost what a 32 px one does (measured in the model card).
    patch: int = 2
    block_out_channels: tuple[int, ...] = (32, 64, 128)
    layers_per_block: int = 1
    attention_blocks: tuple[bool, ...] = (False, True, True)  # down blocks with cross-attention
    head_dim: int = 32
    norm_num_groups: int = 8
    pooled_text: bool = True  # also add the mean text state to the timestep embedding
    text: TextEncoderSpec = field(default_factory=lambda: TextEncoderSpec(kind="minilm", max_length=32))
    text_dim: int = 384  # the encoder's hidden size (MiniLM: 384)
    prediction_type: str = "v_prediction"
    zero_terminal_snr: bool = True
    num_train_timesteps: int = 1000
    # motion/spectral.py normalise(): per-harmonic scales (canvas units) and the power
    scales: tuple[float, ...] = DEFAULT_SCALES
    gamma: float = GAMMA
    # Trained on canonical-phase volumes (motion/spectral.py canonical_phase): a sampled volume's loop starts
    # at the canonical phase, not at the still's own (rendering is the same; frame `cond` is the still).
    # False (configs written before it): the still's measured phase.
    canonical_phase: bool = False

    @property
    def channels(self) -> int:
        return 4 * self.harmonics

    @property
    def fold(self) -> int:
        return self.still_size // self.size

    @property
    def grid(self) -> int:
        """The UNet's own grid: size / patch."""
        return self.size // self.patch


def validate_motion(cfg: MotionConfig) -> MotionConfig:
    """Check a MotionConfig; ConfigError names the key."""
    if cfg.harmonics < 1:
        raise ConfigError(f"motion harmonics={cfg.harmonics}: expected >= 1")
    if cfg.size < 8 or cfg.still_size % cfg.size:
        raise ConfigError(f"motion still_size={cfg.still_size}, size={cfg.size}: expected size >= 8 "
                          "dividing still_size")
    if cfg.patch < 1 or cfg.size % (cfg.patch * 2 ** (len(cfg.block_out_channels) - 1)):
        raise ConfigError(f"motion size={cfg.size}, patch={cfg.patch}: expected size a multiple of "
                          "patch * 2^(blocks - 1)")
    if len(cfg.attention_blocks) != len(cfg.block_out_channels):
        raise ConfigError("motion attention_blocks: expected one flag per block_out_channels entry")
    if any(c % cfg.norm_num_groups for c in cfg.block_out_channels):
        raise ConfigError(f"motion block_out_channels {cfg.block_out_channels}: expected multiples of "
                          f"norm_num_groups={cfg.norm_num_groups}")
    if cfg.prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise ConfigError(f"motion prediction_type '{cfg.prediction_type}': expected epsilon, v_prediction or "
                          "sample")
    if len(cfg.scales) < 1 or min(cfg.scales) <= 0 or cfg.gamma <= 0:
        raise ConfigError(f"motion scales {cfg.scales}, gamma {cfg.gamma}: expected positive numbers")
    return cfg


def motion_config(overrides: dict | None = None) -> MotionConfig:
    """The default MotionConfig with (nested) overrides, validated."""
    return validate_motion(from_dict(MotionConfig, overrides or {}))


class MotionNet(nn.Module):
    """UNet2DConditionModel over (noisy volume ++ folded still), text by cross-attention (+ pooled)."""

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.cfg = validate_motion(cfg)
        down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention_blocks)
        up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention_blocks))
        self.unet = UNet2DConditionModel(
            sample_size=cfg.grid, in_channels=(cfg.channels + 4 * cfg.fold ** 2) * cfg.patch ** 2,
            out_channels=cfg.channels * cfg.patch ** 2,
            down_block_types=down, up_block_types=up, block_out_channels=tuple(cfg.block_out_channels),
            layers_per_block=cfg.layers_per_block, cross_attention_dim=cfg.text_dim,
            # In UNet2DConditionModel `attention_head_dim` is the number of heads (FACTS.md).
            attention_head_dim=tuple(max(1, c // cfg.head_dim) for c in cfg.block_out_channels),
            norm_num_groups=cfg.norm_num_groups, use_linear_projection=True,
            class_embed_type="projection" if cfg.pooled_text else None,
            projection_class_embeddings_input_dim=cfg.text_dim if cfg.pooled_text else None,
        )

    def still_input(self, still: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Straight RGBA still (B, 4, S, S) in [0, 1] -> (B, 4 f^2, s, s) in [-1, 1], zero where not `keep`."""
        x = F.pixel_unshuffle(premultiply_tensor(still) * 2 - 1, self.cfg.fold)  # (B, 4, S, S) -> (B, 4f², s, s)
        return x if keep is None else x * keep.to(x)[:, None, None, None]

    def support(self, still: torch.Tensor, dilate: int = SUPPORT_DILATE) -> torch.Tensor:
        """Straight RGBA stills (B, 4, S, S) -> (B, 1, s, s) in [0, 1]: the sticker's alpha on the field's grid,
        dilated by `dilate` px and softened (spectral.dilate_soft's shape). The torch sampler cuts its sample
        reach_px from the sticker with it, so no stray flow far out on empty canvas pulls sticker pixels into
        the background; the training targets and the final cut use where the sticker shows over the loop
        (spectral.motion_support)."""
        a = F.adaptive_avg_pool2d(still[:, 3:4], self.cfg.size)  # (B, 1, S, S) -> (B, 1, s, s)
        k = 2 * dilate + 1
        m = F.max_pool2d((a > MOVED_THRESHOLD).to(still.dtype), k, stride=1, padding=dilate)  # dilate
        return F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=False)  # soft edge

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, still: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Noisy normalised volume (B, 4K, s, s), timesteps (B,), network-space still (B, 4f², s, s) (see
        `still_input`), text states (B, L, D) -> eps or v (B, 4K, s, s)."""
        pooled = text.mean(dim=1) if self.cfg.pooled_text else None  # (B, D)
        x = F.pixel_unshuffle(torch.cat([x_t, still], dim=1), self.cfg.patch)  # (B, C, s, s) -> (B, C p², s/p, s/p)
        out = self.unet(x, t, encoder_hidden_states=text, class_labels=pooled).sample
        return F.pixel_shuffle(out, self.cfg.patch)  # (B, 4K p², s/p, s/p) -> (B, 4K, s, s)


def count_parameters(net: nn.Module) -> int:
    """Trainable + frozen parameters of a module."""
    return sum(p.numel() for p in net.parameters())


def save_motion_model(net: MotionNet, folder: Path, extra: dict | None = None, dtype: torch.dtype | None = None
                      ) -> Path:
    """Write config.json + motion.safetensors (atomically, file by file)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in net.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_text(folder / "config.json", json.dumps({"kind": KIND, "config": to_dict(net.cfg), **(extra or {})},
                                                         indent=2))
    return folder


class MotionModelError(UserError):
    """A motion model folder that cannot be loaded; the message names the folder, file or tensor."""


def load_motion_model(folder: Path) -> MotionNet:
    """A MotionNet from a folder written by `save_motion_model`: config, tensor names, shapes and finiteness
    are checked, each failure one MotionModelError line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise MotionModelError(f"motion model '{folder}': config.json unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND or not isinstance(meta.get("config"), dict):
        raise MotionModelError(f"motion model '{folder}': config.json is not a motion model's (kind '{KIND}')")
    try:
        net = MotionNet(motion_config(meta["config"]))
    except ConfigError as e:
        raise MotionModelError(f"motion model '{folder}': {e}") from None
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise MotionModelError(f"motion model '{folder}': {WEIGHTS} unreadable ({e})") from None
    expected = net.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise MotionModelError(f"motion model '{folder}': tensor '{missing[0]}' missing from {WEIGHTS}")
    for k, v in tensors.items():
        if k not in expected:
            raise MotionModelError(f"motion model '{folder}': unexpected tensor '{k}' in {WEIGHTS}")
        if tuple(v.shape) != tuple(expected[k].shape):
            raise MotionModelError(f"motion model '{folder}': tensor '{k}' has shape {tuple(v.shape)}, "
                                   f"expected {tuple(expected[k].shape)}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise MotionModelError(f"motion model '{folder}': tensor '{k}' has non-finite values")
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    return net.eval()
