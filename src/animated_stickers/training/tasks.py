"""Stage tasks: modules whose forward(batch) returns (loss, logs), so any Accelerate engine wraps them.

VAETask       - RGBA reconstruction (premultiplied, extra alpha weight, image gradients) + KL.
DiffusionTask - eps/v objective on cached latents with IP2P conditioning and CFG dropout (paper 2.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.loader import LoaderConfig
from ..diffusion.schedules import target, train_scheduler
from ..models.checkpoint import StickerModel
from ..models.unet import make_cond_mask
from ..rgba import premultiply_tensor
from .banks import FrameBank, LatentBank, pick_sample, rng_from, source_groups
from .recipes import Stage


def _grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


class VAETask(nn.Module):
    """Stage 1: the RGBA VAE. Loss = L1(premultiplied RGBA) + 2*L1(alpha) + L1(image gradients) + KL."""

    def __init__(self, model: StickerModel, bank: FrameBank, stage: Stage, kl_weight: float = 1e-6) -> None:
        super().__init__()
        self.vae = model.vae
        self.bank, self.stage, self.kl_weight = bank, stage, kl_weight

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.vae.parameters())

    def make_batch(self, gen: torch.Generator) -> dict:
        return {"rgba": self.bank.batch(gen, self.stage.batch_size, self.stage.crop or self.bank.frames.shape[1])}

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        x = premultiply_tensor(batch["rgba"]) * 2 - 1  # the VAE's own space (models/vae.py)
        dist = self.vae.encode_dist(batch["rgba"])
        rec = self.vae.decode_raw(self.vae.latent(batch["rgba"], sample=True, dist=dist))
        l1 = (rec - x).abs().mean()
        alpha = (rec[:, 3] - x[:, 3]).abs().mean()  # transparent backgrounds must stay exact
        gy, gx = _grad(rec)
        ty, tx = _grad(x)
        edges = (gy - ty).abs().mean() + (gx - tx).abs().mean()  # keeps outlines sharp
        kl = dist.kl().mean()  # summed over latent elements, averaged over the batch
        loss = l1 + 2 * alpha + edges + self.kl_weight * kl
        return loss, {"l1": l1.detach(), "alpha_l1": alpha.detach(), "kl": kl.detach()}


class DiffusionTask(nn.Module):
    """Stages t2i and video: predict eps or v (zero-terminal SNR with v) from noisy latents.

    Examples come from the loader's rules (data/loader.py `plan_example`) over a LatentBank: whole loops
    with a random roll, the conditioning frame (marked by the mask channel), templated captions and CFG
    dropout (paper 2.1): a dropped text uses the "" encoding, a dropped image a zero latent (IP2P).
    A `frames_mix` share of video batches uses longer loops (e.g. 16 frames at half the batch).
    """

    def __init__(self, model: StickerModel, bank: LatentBank, stage: Stage, loader: LoaderConfig) -> None:
        super().__init__()
        self.unet = model.unet
        self.model_text = model.text  # frozen encoders: captions are templated per example
        self.cfg = model.cfg
        self.bank, self.stage, self.loader = bank, stage, loader
        self.groups, self.weights = source_groups(bank.metas, stage.data)
        self.scheduler = train_scheduler(model.cfg)
        self._text_cache: dict[str, list[torch.Tensor]] = {}
        if stage.kind == "video" and stage.freeze_spatial:
            for name, p in self.unet.named_parameters():
                # Frozen spatial weights (paper 3.1): train temporal layers and the widened conv_in.
                p.requires_grad_(".temporal." in name or name.startswith("unet.conv_in"))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.unet.parameters() if p.requires_grad]

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> list[torch.Tensor]:
        """Per encoder (B, L, D): frozen text states, memoised per distinct prompt."""
        todo = sorted({p for p in prompts if p not in self._text_cache})
        if todo:
            states = self.model_text(todo)
            for i, p in enumerate(todo):
                self._text_cache[p] = [s[i].float() for s in states]
        return [torch.stack([self._text_cache[p][k] for p in prompts]) for k in range(len(self.cfg.text.encoders))]

    def make_batch(self, gen: torch.Generator) -> dict:
        video = self.stage.kind == "video"
        frames, batch_size = self.cfg.num_frames, self.stage.batch_size
        if video and self.stage.long_frames and torch.rand((), generator=gen) < self.stage.long_share:
            # The same frames per batch: 16-frame loops at half the batch.
            frames = self.stage.long_frames
            batch_size = max(1, batch_size * self.cfg.num_frames // frames)
        z0, cond, idx, prompts, drop_text, drop_image = [], [], [], [], [], []
        for _ in range(batch_size):
            i = pick_sample(gen, self.groups, self.weights)
            clip, plan = self.bank.example(i, rng_from(gen), self.loader, frames if video else 1)
            ci = plan.cond_index if video else 0
            if not video:  # a single frame (the plan's conditioning frame) with its caption
                clip = clip[:, plan.cond_index:plan.cond_index + 1] if clip.shape[1] > 1 else clip
            z0.append(clip)
            cond.append(clip[:, ci])
            idx.append(ci)
            prompts.append(plan.caption)
            drop_text.append(plan.drop_text)
            drop_image.append(plan.drop_image)
        b = len(z0)
        x0 = torch.stack(z0)  # (B, C, T, h, w)
        return {
            "z0": x0, "cond": torch.stack(cond), "cond_index": torch.tensor(idx),
            "text": self.encode_text(prompts), "drop_text": torch.tensor(drop_text),
            "drop_image": torch.tensor(drop_image),
            "noise": torch.randn(x0.shape, generator=gen),
            "t": torch.randint(self.scheduler.config.num_train_timesteps, (b,), generator=gen),
        }

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        z0, noise, t = batch["z0"], batch["noise"], batch["t"]
        if self.stage.kind == "video" and self.cfg.video_target == "residual":
            z0 = z0 - batch["cond"][:, :, None]  # the true conditioning frame, even when its input is dropped
        zt = self.scheduler.add_noise(z0, noise, t)
        null = self.encode_text([""])
        text = [torch.where(batch["drop_text"][:, None, None], n.to(x), x) for x, n in zip(batch["text"], null)]
        image, mask = None, None
        if self.unet.inflated:
            image = batch["cond"] * (~batch["drop_image"]).float()[:, None, None, None]
            mask = make_cond_mask(z0.shape[0], z0.shape[2], batch["cond_index"])
        pred = self.unet(zt, t, text, image, mask)
        loss = F.mse_loss(pred, target(self.scheduler, z0, noise, t))
        return loss, {}

