"""A sticker animated by the learned motion model (issue 28; opt-in, not the default path yet).

still + prompt -> the network's spectral volume (diffusion/motion.py, DDIM with IP2P guidance) -> flows at
any frame count (motion/spectral.py render_flows; the still is exactly frame `cond`) -> the full-size
sticker moved along them (flow.py warp_along, the warp render's own step): every pixel is the sticker's
and the loop closes by construction. A model with `canonical_phase` in its config (trained on
canonical-phase volumes, motion/spectral.py) samples volumes whose loop starts at the canonical phase: the
still is frame `cond` all the same, placed where the weighted first-harmonic motion crosses zero. The
prompt reaches the motion only through the text encoder.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..diffusion.motion import sample_spectral
from ..flow import warp_along
from ..models.motion_net import MotionNet
from ..motion.spectral import denormalise, render_flows
from ..rgba import fit_on_square, premultiply, unpremultiply


def motion_volume(net: MotionNet, text_encoders, still: np.ndarray, prompt: str, seed: int = 0, steps: int = 20,
                  image_guidance: float = 1.0, text_guidance: float = 1.0) -> np.ndarray:
    """Straight RGBA still (H, W, 4) uint8 + prompt -> spectral volume (4K, s, s) in canvas units of the
    still's square (the still centred on a transparent square of its long side)."""
    cfg = net.cfg
    small = np.asarray(fit_on_square(Image.fromarray(still, "RGBA"), cfg.still_size)[0], np.float32) / 255
    x = torch.from_numpy(small).permute(2, 0, 1)[None]  # (S, S, 4) -> (1, 4, S, S)
    text, null = text_encoders([prompt])[0].float(), text_encoders([""])[0].float()
    z = sample_spectral(net, x, text, null, steps, image_guidance, text_guidance,
                        torch.Generator().manual_seed(seed))
    return denormalise(z[0], cfg.scales, cfg.gamma).numpy()


def render_motion(still: np.ndarray, volume: np.ndarray, num_frames: int, cond: int = 0) -> np.ndarray:
    """Straight RGBA still (H, W, 4) uint8 moved along a spectral volume: (T, H, W, 4) float32 straight RGBA in
    [0, 1]; frame `cond` is the still (its premultiplied pixels exactly)."""
    h, w = still.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2  # fit_on_square's placement at the still's own long side
    square = np.zeros((side, side, 4), np.float32)
    square[top:top + h, left:left + w] = still.astype(np.float32) / 255
    flows = render_flows(volume, num_frames, cond)  # (T, s, s, 2) px of the volume's grid
    frames = unpremultiply(warp_along(premultiply(square), flows))  # (T, side, side, 4)
    return frames[:, top:top + h, left:left + w]
