"""Anchoring the conditioning frame at sampling time.

The conditioning frame (paper 3.1.2: the middle one) has a known clean latent: the sticker's own.
At every step we rewrite the model output of that frame so that the x0 it implies is exactly that
latent, for whatever x_t the solver holds. The solver then lands frame `index` on the sticker, and
the temporal layers see a neighbour that agrees with it at every noise level, so the other frames
take its colours and details instead of drifting. Only the prediction is changed: any diffusers
solver (DPM-Solver, DDIM, DDPM) integrates it unchanged. Training is untouched: a correctly noised
clean frame is exactly what the model saw in training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def output_for_x0(x_t, x0, alpha_bar, prediction_type: str):
    """The eps or v prediction whose implied clean sample at x_t is x0 (alpha_bar broadcastable).
    Torch tensors or numpy arrays alike (the ONNX runtime anchors in numpy)."""
    a, s = alpha_bar ** 0.5, (1 - alpha_bar) ** 0.5
    if prediction_type == "v_prediction":
        # x_t = a x0 + s eps and v = a eps - s x0  =>  v = (a x_t - x0) / s  (exact at s = 1, zero SNR).
        return (a * x_t - x0) / s
    if prediction_type == "epsilon":
        return (x_t - a * x0) / s.clip(min=1e-4)
    raise ValueError(f"prediction_type '{prediction_type}': expected epsilon or v_prediction")


def anchor_frame(pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, clean: torch.Tensor, index: int,
                 alphas_cumprod: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """pred (B, C, T, h, w) with frame `index` replaced so its implied x0 is `clean` (B, C, h, w)."""
    import torch

    ab = alphas_cumprod.to(x_t.device, torch.float32)[torch.as_tensor(t).long().reshape(-1)]
    ab = ab.expand(x_t.shape[0]).reshape(-1, 1, 1, 1)
    out = pred.clone()
    out[:, :, index] = output_for_x0(x_t[:, :, index].float(), clean.float(), ab, prediction_type).to(pred.dtype)
    return out
