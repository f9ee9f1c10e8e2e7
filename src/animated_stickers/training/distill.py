"""Distillation stages (paper 3.3.3): fewer UNet evaluations per sticker, same parameter count.

distill-guidance (Meng et al. 2023, arXiv 2210.03142): the student is the teacher plus an input for
    (sigma_I, sigma_T), embedded like the timestep (models/unet.py `add_guidance_embedding`, zero-init, so
    the fresh student IS the teacher's conditional branch). It learns the teacher's three-branch IP2P
    output (eq. 1-3) for random scales in [1, max] in one forward: 3 evaluations per step -> 1.
distill-steps (Salimans & Ho 2022, arXiv 2202.00512): one student DDIM step matches two teacher DDIM
    steps. Student grid = diffusers DDIM with trailing spacing at N = `stage.student_steps` steps: step
    i goes from tau_i to tau_i - 1000 // N (diffusers' own rule, `set_alpha_to_one=True` so the last
    step lands on alpha_bar = 1: its prev_sample is the clean latent). The teacher goes tau -> mid ->
    prev with mid = tau - 1000 // (2N), i.e. its own 2N-step grid. Chain stages 16 -> 8 -> 4 (-> 2);
    each stage's teacher is the previous stage's student. With v-prediction and zero terminal SNR the
    first step starts at alpha_bar = 0 (pure noise): the target below stays finite there.
distill-consistency (Luo et al. 2023, LCM; for comparison): the student's consistency function
    f(z_t, t) = c_skip(t) z_t + c_out(t) x0_hat(z_t, t) (diffusers LCMScheduler's boundary scalings) must
    agree with an EMA target network's f at the point one teacher DDIM step earlier on the LCM_GRID-step
    grid (skipping step 1000 // LCM_GRID); f(z, clean) = z. Samples with diffusers LCMScheduler
    ("lcm", N = `student_steps` steps, re-noising between steps). The EMA target is a registered,
    non-trained submodule, so checkpoints resume it exactly.

The teachers are frozen copies of the stage's starting model, kept out of the task's state_dict (they
are rebuilt from the previous stage's model folder on resume), so checkpoints hold only the student.
Batches (clips, captions, conditioning frame, noise) come from DiffusionTask; conditions are never
dropped here: the student learns the guided, fully conditioned prediction.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F

from ..config import model_config
from ..data.loader import LoaderConfig
from ..diffusion.anchor import output_for_x0
from ..diffusion.guidance import ip2p_combine
from ..diffusion.sampler import LCM_GRID, make_scheduler
from ..models.checkpoint import StickerModel
from ..models.unet import StickerUNet, make_cond_mask
from .banks import LatentBank
from .recipes import Stage
from .tasks import DiffusionTask


# --------------------------------------------------------------------------- math (shared with the tests)
def ddim_step(z: torch.Tensor, out: torch.Tensor, ab_t: torch.Tensor, ab_s: torch.Tensor,
              prediction_type: str) -> torch.Tensor:
    """Deterministic DDIM (eta 0) from alpha_bar ab_t to ab_s (broadcastable (B, 1, 1, 1, 1)), the
    update diffusers' DDIMScheduler.step makes."""
    a_t, s_t, a_s, s_s = ab_t.sqrt(), (1 - ab_t).sqrt(), ab_s.sqrt(), (1 - ab_s).sqrt()
    if prediction_type == "v_prediction":
        x0, eps = a_t * z - s_t * out, a_t * out + s_t * z
    else:  # epsilon (alpha_bar > 0 without zero terminal SNR)
        x0, eps = (z - s_t * out) / a_t, out
    return a_s * x0 + s_s * eps


def one_step_target(z_t: torch.Tensor, z_s: torch.Tensor, ab_t: torch.Tensor, ab_s: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """The model output whose single DDIM step ab_t -> ab_s takes z_t to z_s (Salimans & Ho eq. 8):
    x~ = (z_s - (s_s/s_t) z_t) / (a_s - (s_s/s_t) a_t), then the eps or v that implies x~ at z_t."""
    a_t, s_t, a_s, s_s = ab_t.sqrt(), (1 - ab_t).sqrt(), ab_s.sqrt(), (1 - ab_s).sqrt()
    ratio = s_s / s_t
    x0 = (z_s - ratio * z_t) / (a_s - ratio * a_t)  # a_s > ratio * a_t whenever s < t
    return output_for_x0(z_t, x0, ab_t, prediction_type)


def predicted_x0(z: torch.Tensor, out: torch.Tensor, ab: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The clean latent a model output implies at z (as diffusers' schedulers compute it)."""
    a, s = ab.sqrt(), (1 - ab).sqrt()
    return a * z - s * out if prediction_type == "v_prediction" else (z - s * out) / a


def student_schedule(scheduler) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For a diffusers DDIMScheduler with timesteps set: (tau (N,), mid (N,), prev (N,)) integer
    timesteps, prev = -1 meaning the final alpha_bar (diffusers' `final_alpha_cumprod`)."""
    tau = scheduler.timesteps.long()
    stride = scheduler.config.num_train_timesteps // scheduler.num_inference_steps  # diffusers' prev rule
    prev = (tau - stride).clamp_min(-1)
    mid = tau - stride // 2  # stride // 2 = the 2N-step teacher's stride when 1000 % 2N allows
    return tau, mid, prev


def alpha_bar_at(scheduler, t: torch.Tensor) -> torch.Tensor:
    """alpha_bar at integer timesteps t (B,), -1 -> the final alpha_bar; shaped (B, 1, 1, 1, 1)."""
    ab = scheduler.alphas_cumprod.float()
    final = torch.as_tensor(float(scheduler.final_alpha_cumprod))
    out = torch.where(t >= 0, ab[t.clamp_min(0)], final)
    return out.reshape(-1, 1, 1, 1, 1)


def guided_prediction(net: StickerUNet, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                      null_context: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None,
                      scales: torch.Tensor) -> torch.Tensor:
    """The IP2P-guided prediction (eq. 1-3) with per-example scales (B, 2): one forward for a guidance-
    embedded net or scales 1/1, else the three branches as one 3B forward."""
    if net.guidance_embedded:
        return net(x, t, context, image, mask, guidance=scales)
    if bool((scales == 1).all()):
        return net(x, t, context, image, mask)
    zeros = torch.zeros_like(image)
    m = None if mask is None else mask.repeat(3, 1)
    out = net(torch.cat([x] * 3), t.repeat(3), torch.cat([null_context, null_context, context]),
              torch.cat([zeros, image, image]), m)
    uncond, img, full = out.chunk(3)
    s_i, s_t = (scales[:, k].reshape(-1, 1, 1, 1, 1).to(x) for k in range(2))
    return ip2p_combine(uncond, img, full, s_i, s_t)


def projected(net: StickerUNet, states: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Text states per encoder -> the net's projected context (B, L, D); a tensor is already one."""
    return net.context_proj(states) if isinstance(states, (list, tuple)) else states


def frozen_copy(unet: StickerUNet) -> StickerUNet:
    return copy.deepcopy(unet).eval().requires_grad_(False)


# --------------------------------------------------------------------------- tasks
class _DistillTask(DiffusionTask):
    """Shared parts: video batches from DiffusionTask, a hidden frozen teacher, conditions, scales."""

    def __init__(self, model: StickerModel, bank: LatentBank, stage: Stage, loader: LoaderConfig) -> None:
        if not model.unet.inflated:
            raise ValueError(f"stage '{stage.name}': distillation needs a video model to start from")
        # DiffusionTask's video batches (its rules key on kind == "video"); all student weights train.
        super().__init__(model, bank, dataclasses.replace(stage, kind="video", freeze_spatial=False), loader)
        self.distill_stage = stage
        self.model = model
        object.__setattr__(self, "teacher", frozen_copy(model.unet))  # not a submodule: not checkpointed
        self.anchor = model.sampling.anchor  # teacher steps anchor the conditioning frame as sampling does

    def conditions(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor],
                                                 torch.Tensor, torch.Tensor | None]:
        """(z0 in the model's target space, sticker latent, text states, its null, cond mask)."""
        z0 = batch["z0"]
        if self.cfg.video_target == "residual":
            z0 = z0 - batch["cond"][:, :, None]
        b, t = z0.shape[0], z0.shape[2]
        null = [n.to(x).expand(b, -1, -1) for x, n in zip(batch["text"], self.encode_text([""]))]
        mask = make_cond_mask(b, t, batch["cond_index"]) if self.cfg.unet.cond_mask else None
        return z0, batch["cond"], batch["text"], null, mask

    def _anchored(self, pred: torch.Tensor, z: torch.Tensor, ab: torch.Tensor, cond_index: torch.Tensor,
                  clean: torch.Tensor) -> torch.Tensor:
        """As at sampling time (diffusion/anchor.py): the conditioning frame's output implies `clean`."""
        if not self.anchor:
            return pred
        out = pred.clone()
        for i, c in enumerate(cond_index.tolist()):  # per-example conditioning frame
            out[i, :, c] = output_for_x0(z[i, :, c], clean[i], ab[i, :, 0], self.cfg.prediction_type)
        return out

    def draw_scales(self, gen: torch.Generator, b: int) -> torch.Tensor:
        """(B, 2) scales: uniform in [1, max] for a guidance-embedded student, else the model's own."""
        if self.unet.guidance_embedded:
            hi = torch.tensor([self.distill_stage.max_image_guidance, self.distill_stage.max_text_guidance])
            return 1 + torch.rand(b, 2, generator=gen) * (hi - 1).clamp_min(0)
        s = self.model.sampling
        return torch.tensor([[s.image_guidance, s.text_guidance]]).expand(b, 2).clone()


class GuidanceDistillTask(_DistillTask):
    """distill-guidance: student(z_t, t, c, sigma_I, sigma_T) ~ teacher's guided output, one forward."""

    def __init__(self, model: StickerModel, bank: LatentBank, stage: Stage, loader: LoaderConfig) -> None:
        super().__init__(model, bank, stage, loader)  # the teacher is copied before the new input exists
        self.unet.add_guidance_embedding()

    def make_batch(self, gen: torch.Generator) -> dict:
        batch = super().make_batch(gen)
        batch["scales"] = self.draw_scales(gen, batch["z0"].shape[0])
        return batch

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        z0, image, text, null, mask = self.conditions(batch)
        t, scales = batch["t"], batch["scales"]
        zt = self.scheduler.add_noise(z0, batch["noise"], t)
        with torch.no_grad():
            tn = self.teacher.to(zt.device)
            target = guided_prediction(tn, zt, t, projected(tn, text), projected(tn, null), image, mask, scales)
        pred = self.unet(zt, t, text, image, mask, guidance=scales)
        return F.mse_loss(pred, target), {}


class StepDistillTask(_DistillTask):
    """distill-steps: one student DDIM step (N-step grid) ~ two teacher DDIM steps (2N grid)."""

    def __init__(self, model: StickerModel, bank: LatentBank, stage: Stage, loader: LoaderConfig) -> None:
        super().__init__(model, bank, stage, loader)
        self.ddim = make_scheduler(model.cfg, "ddim", stage.student_steps)
        self.tau, self.mid, self.prev = student_schedule(self.ddim)
        # The result samples with DDIM (trailing) at N steps, one evaluation per step.
        model.sampling = dataclasses.replace(model.sampling, scheduler="ddim", steps=stage.student_steps,
                                             guided_steps=stage.student_steps)

    def make_batch(self, gen: torch.Generator) -> dict:
        batch = super().make_batch(gen)
        b = batch["z0"].shape[0]
        batch["step"] = torch.randint(len(self.tau), (b,), generator=gen)  # which student step
        batch["t"] = self.tau[batch["step"]]
        batch["scales"] = self.draw_scales(gen, b)
        return batch

    @torch.no_grad()
    def teacher_two_steps(self, z_t: torch.Tensor, step: torch.Tensor, context, null, image, mask, scales,
                          cond_index: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        """z at the student's next timestep after two teacher DDIM steps tau -> mid -> prev."""
        teacher, pt = self.teacher.to(z_t.device), self.cfg.prediction_type
        ctx, nul = projected(teacher, context), projected(teacher, null)
        z = z_t
        for a, b in ((self.tau, self.mid), (self.mid, self.prev)):
            t_a, t_b = a[step], b[step]
            ab_a, ab_b = alpha_bar_at(self.ddim, t_a), alpha_bar_at(self.ddim, t_b)
            out = guided_prediction(teacher, z, t_a, ctx, nul, image, mask, scales)
            z = ddim_step(z, self._anchored(out, z, ab_a, cond_index, clean), ab_a, ab_b, pt)
        return z

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        z0, image, text, null, mask = self.conditions(batch)
        step, t, scales = batch["step"], batch["t"], batch["scales"]
        zt = self.scheduler.add_noise(z0, batch["noise"], t)
        clean = torch.zeros_like(image) if self.cfg.video_target == "residual" else image
        z_s = self.teacher_two_steps(zt, step, text, null, image, mask, scales, batch["cond_index"], clean)
        ab_t, ab_s = alpha_bar_at(self.ddim, t), alpha_bar_at(self.ddim, self.prev[step])
        target = one_step_target(zt, z_s, ab_t, ab_s, self.cfg.prediction_type)
        pred = self.unet(zt, t, text, image, mask, guidance=scales if self.unet.guidance_embedded else None)
        return F.mse_loss(pred, target), {}


class ConsistencyDistillTask(_DistillTask):
    """distill-consistency: latent consistency distillation on the teacher's LCM_GRID-step DDIM grid."""

    EMA = 0.95  # target network decay (LCM paper)

    def __init__(self, model: StickerModel, bank: LatentBank, stage: Stage, loader: LoaderConfig) -> None:
        super().__init__(model, bank, stage, loader)
        self.target_net = frozen_copy(model.unet)  # registered: checkpointed with the student
        self.lcm = make_scheduler(model.cfg, "lcm", stage.student_steps)
        stride = model.cfg.num_train_timesteps // LCM_GRID
        self.grid = torch.arange(LCM_GRID, 0, -1) * stride - 1  # 999, 979, ..., 19: LCM's own grid
        self.stride = stride
        model.sampling = dataclasses.replace(model.sampling, scheduler="lcm", steps=stage.student_steps,
                                             guided_steps=stage.student_steps)

    def scalings(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_skip, c_out) per timestep (B, 1, 1, 1, 1); t = -1 (clean) gives (1, 0)."""
        pairs = [self.lcm.get_scalings_for_boundary_condition_discrete(int(x)) if x >= 0 else (1.0, 0.0)
                 for x in t.tolist()]
        c_skip, c_out = (torch.tensor(v, dtype=torch.float32).reshape(-1, 1, 1, 1, 1) for v in zip(*pairs))
        return c_skip, c_out

    def consistency(self, net: StickerUNet, z: torch.Tensor, t: torch.Tensor, text, image, mask, scales
                    ) -> torch.Tensor:
        """f(z, t) = c_skip z + c_out x0_hat (t = -1: z itself)."""
        c_skip, c_out = self.scalings(t)
        out = net(z, t.clamp_min(0), text, image, mask, guidance=scales if net.guidance_embedded else None)
        x0 = predicted_x0(z, out, alpha_bar_at(self.lcm, t), self.cfg.prediction_type)
        return c_skip * z + c_out * x0

    def make_batch(self, gen: torch.Generator) -> dict:
        batch = super().make_batch(gen)
        b = batch["z0"].shape[0]
        batch["t"] = self.grid[torch.randint(LCM_GRID, (b,), generator=gen)]
        batch["scales"] = self.draw_scales(gen, b)
        return batch

    @torch.no_grad()
    def teacher_step(self, z, t, context, null, image, mask, scales, cond_index, clean) -> torch.Tensor:
        """One teacher DDIM step t -> t - stride (-1: alpha_bar 1)."""
        teacher = self.teacher.to(z.device)
        s = (t - self.stride).clamp_min(-1)
        ab_t, ab_s = alpha_bar_at(self.lcm, t), alpha_bar_at(self.lcm, s)
        out = guided_prediction(teacher, z, t, projected(teacher, context), projected(teacher, null), image, mask,
                                scales)
        return ddim_step(z, self._anchored(out, z, ab_t, cond_index, clean), ab_t, ab_s, self.cfg.prediction_type)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        z0, image, text, null, mask = self.conditions(batch)
        t, scales = batch["t"], batch["scales"]
        zt = self.scheduler.add_noise(z0, batch["noise"], t)
        clean = torch.zeros_like(image) if self.cfg.video_target == "residual" else image
        with torch.no_grad():
            if self.training:  # EMA target update (before this step's target, as in LCM's loop)
                for pt, ps in zip(self.target_net.parameters(), self.unet.parameters()):
                    pt.lerp_(ps.detach(), 1 - self.EMA)
            z_s = self.teacher_step(zt, t, text, null, image, mask, scales, batch["cond_index"], clean)
            target = self.consistency(self.target_net, z_s, (t - self.stride).clamp_min(-1), text, image, mask,
                                      scales)
        pred = self.consistency(self.unet, zt, t, text, image, mask, scales)
        return F.mse_loss(pred, target), {}


def distill_config(model: StickerModel, stage: Stage):
    """The stage's model config: distill-guidance switches `unet.guidance_embedding` on."""
    if stage.kind == "distill-guidance":
        return model_config(base=model.cfg, overrides={"unet": {"guidance_embedding": True}})
    return model.cfg


def distill_task(model: StickerModel, bank: LatentBank, stage: Stage, loader: LoaderConfig) -> _DistillTask:
    """The task of a distill-guidance or distill-steps stage (trains `model.unet` in place)."""
    if stage.kind == "distill-guidance":
        return GuidanceDistillTask(model, bank, stage, loader)
    if stage.kind == "distill-steps":
        return StepDistillTask(model, bank, stage, loader)
    if stage.kind == "distill-consistency":
        return ConsistencyDistillTask(model, bank, stage, loader)
    raise ValueError(f"stage '{stage.name}': kind '{stage.kind}' is not a distillation stage")
