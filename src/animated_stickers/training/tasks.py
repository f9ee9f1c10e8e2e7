"""Stage tasks: modules whose forward(batch) returns (loss, logs), so any Accelerate engine wraps them.

VAETask       - RGBA reconstruction (premultiplied, extra alpha weight, image gradients) + KL.
DiffusionTask - eps/v objective on cached latents with IP2P conditioning and CFG dropout (paper 2.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion.schedules import target, train_scheduler
from ..models.checkpoint import StickerModel
from ..models.vae import premultiply
from .banks import FrameBank, LatentBank
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
        x = premultiply(batch["rgba"]) * 2 - 1  # the VAE's own space (models/vae.py)
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

    Text and image conditions are dropped separately and together (CFG dropout, paper 2.1):
    a dropped text uses the "" encoding, a dropped image a zero latent (InstructPix2Pix).
    """

    def __init__(self, model: StickerModel, banks: dict[str, LatentBank], stage: Stage,
                 null_text: list[torch.Tensor]) -> None:
        super().__init__()
        self.unet = model.unet
        self.cfg = model.cfg
        self.banks = banks
        self.weights = torch.tensor([stage.data.get(k, 0.0) for k in banks])
        self.stage = stage
        self.scheduler = train_scheduler(model.cfg)
        self.null_text = [t.float() for t in null_text]  # per encoder (L, D)
        if stage.kind == "video" and stage.freeze_spatial:
            for name, p in self.unet.named_parameters():
                # Frozen spatial weights (paper 3.1): train temporal layers and the widened conv_in.
                p.requires_grad_(".temporal." in name or name.startswith("unet.conv_in"))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.unet.parameters() if p.requires_grad]

    def _cond_index(self, gen: torch.Generator) -> int:
        from ..data.clips import cond_frame_index

        mode = self.stage.cond_frame
        if mode == "random":
            return int(torch.randint(self.cfg.num_frames, (1,), generator=gen))
        return cond_frame_index(mode, self.cfg.num_frames)

    def make_batch(self, gen: torch.Generator) -> dict:
        video = self.stage.kind == "video"
        names = list(self.banks)
        z0, cond, text = [], [], [[] for _ in self.null_text]
        fps = None if self.stage.fps == "dynamic" else float(self.stage.fps)
        ci = self._cond_index(gen)
        for _ in range(self.stage.batch_size):
            bank = self.banks[names[int(torch.multinomial(self.weights, 1, generator=gen))]]
            i = int(torch.randint(len(bank.entries), (1,), generator=gen))
            if video:
                clip, c = bank.clip(i, gen, self.cfg.num_frames, fps, ci)
            else:  # a single frame of a video (or a still) with its caption
                e = bank.entries[i]
                f = bank.latents[e.start + int(torch.randint(e.length, (1,), generator=gen))].float()
                clip, c = f[:, None], f
            z0.append(clip)
            cond.append(c)
            for k, t in enumerate(bank.text):
                text[k].append(t[i].float())
        b = len(z0)
        u = torch.rand(b, generator=gen)
        s = self.stage
        drop_both = u < s.drop_both
        drop_text = drop_both | ((u >= s.drop_both) & (u < s.drop_both + s.drop_text))
        drop_image = drop_both | ((u >= s.drop_both + s.drop_text) & (u < s.drop_both + s.drop_text + s.drop_image))
        return {
            "z0": torch.stack(z0), "cond": torch.stack(cond),
            "text": [torch.stack(t) for t in text],
            "drop_text": drop_text, "drop_image": drop_image,
            "noise": torch.randn(torch.stack(z0).shape, generator=gen),
            "t": torch.randint(self.scheduler.config.num_train_timesteps, (b,), generator=gen),
        }

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        z0, noise, t = batch["z0"], batch["noise"], batch["t"]
        if self.stage.kind == "video" and self.cfg.video_target == "residual":
            z0 = z0 - batch["cond"][:, :, None]  # the true conditioning frame, even when its input is dropped
        zt = self.scheduler.add_noise(z0, noise, t)
        text = [torch.where(batch["drop_text"][:, None, None], n[None].to(x), x)
                for x, n in zip(batch["text"], self.null_text)]
        image = None
        if self.unet.inflated:
            image = batch["cond"] * (~batch["drop_image"]).float()[:, None, None, None]
        pred = self.unet(zt, t, text, image)
        loss = F.mse_loss(pred, target(self.scheduler, z0, noise, t))
        return loss, {}
