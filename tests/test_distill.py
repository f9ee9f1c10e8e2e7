"""Distillation (training/distill.py): guidance-embedded students, step-distillation targets, the
one-evaluation-per-step sampler, and the benchmark's naive/distilled rows. Tiny random models only."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from animated_stickers.data.loader import LoaderConfig
from animated_stickers.diffusion.guidance import DualGuidance, IP2PConditions
from animated_stickers.diffusion.sampler import LCM_GRID, make_scheduler
from animated_stickers.models.checkpoint import load_model, save_model
from animated_stickers.models.unet import make_cond_mask
from animated_stickers.sampling.pipeline import AnimatePipeline
from animated_stickers.training.banks import LatentBank
from animated_stickers.training.distill import (
    ConsistencyDistillTask,
    GuidanceDistillTask,
    StepDistillTask,
    alpha_bar_at,
    distill_config,
    one_step_target,
)
from animated_stickers.training.recipes import Stage
from animated_stickers.training.stages import with_config
from sampling_support import one_thread, tiny_model  # noqa: F401 (autouse fixture)

ENC = ["text.encoders=[{kind: minilm, max_length: 8}]"]


def _bank(n: int = 3, frames: int = 16, c: int = 8, hw: int = 8) -> LatentBank:
    lat = torch.randn(n * frames, c, hw, hw, generator=torch.Generator().manual_seed(5)).half()
    metas = [{"key": f"v{i}", "source": "fluent-anim", "caption": f"caption {i}", "n_frames": frames, "fps": 12.0,
              "loop_period": frames, "start": i * frames, "length": frames} for i in range(n)]
    return LatentBank(lat, metas)


def _stage(kind: str, **kw) -> Stage:
    return Stage(name=kind, kind=kind, steps=4, batch_size=2, data={"fluent-anim": 1.0}, cond_frame="random", **kw)


def _task(cls, model, stage):
    model = with_config(model, distill_config(model, stage))
    loader = LoaderConfig(data="", cond_mode=stage.cond_frame)
    return model, cls(model, _bank(), stage, loader)


def _inputs(model, b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    x = torch.randn(b, 8, cfg.num_frames, cfg.latent_size, cfg.latent_size, generator=g)
    ctx = torch.randn(b, 6, cfg.unet.cross_attention_dim, generator=g)
    img = torch.randn(b, 8, cfg.latent_size, cfg.latent_size, generator=g)
    return x, ctx, img, make_cond_mask(b, cfg.num_frames, 3)


def test_fresh_guidance_student_is_the_teachers_conditional_branch_and_round_trips(tmp_path):
    model = tiny_model(overrides=ENC)
    x, ctx, img, mask = _inputs(model)
    t = torch.tensor([999, 400])
    with torch.no_grad():
        teacher = model.unet(x, t, ctx, img, mask)
    stage = _stage("distill-guidance")
    model, task = _task(GuidanceDistillTask, model, stage)
    assert model.unet.guidance_embedded and model.cfg.unet.guidance_embedding
    scales = torch.tensor([[7.5, 2.0], [3.0, 1.5]])
    with torch.no_grad():
        assert torch.equal(model.unet(x, t, ctx, img, mask, guidance=scales), teacher)
        model.unet.unet.time_embedding.cond_proj.weight.normal_()  # trained: the scales now matter
        moved = model.unet(x, t, ctx, img, mask, guidance=scales)
    assert not torch.allclose(moved, teacher)
    loaded = load_model(save_model(model, tmp_path / "student"))
    assert loaded.unet.guidance_embedded
    with torch.no_grad():
        assert torch.equal(loaded.unet(x, t, ctx, img, mask, guidance=scales), moved)


def test_guidance_distillation_loss_falls_with_training():
    model, task = _task(GuidanceDistillTask, tiny_model(overrides=ENC), _stage("distill-guidance"))
    batch = task.make_batch(torch.Generator().manual_seed(1))
    assert batch["scales"].shape == (2, 2) and bool((batch["scales"] >= 1).all())
    opt = torch.optim.Adam(task.trainable_parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss, _ = task(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    assert not any(p.requires_grad for p in task.teacher.parameters())
    assert not any(k.startswith("teacher") for k in task.state_dict())  # checkpoints hold the student only


def test_step_target_makes_one_student_step_equal_two_teacher_ddim_steps():
    model = tiny_model(overrides=ENC)
    model.sampling = dataclasses.replace(model.sampling, image_guidance=7.5, text_guidance=2.0, anchor=False)
    n = 4
    model, task = _task(StepDistillTask, model, _stage("distill-steps", student_steps=n))
    assert (model.sampling.scheduler, model.sampling.steps) == ("ddim", n)
    x, ctx, img, mask = _inputs(model, b=1)
    null = torch.zeros_like(ctx)
    cond = IP2PConditions(context=ctx, null_context=null, image_latent=img, cond_mask=mask)
    teacher_sched, student_sched = make_scheduler(model.cfg, "ddim", 2 * n), make_scheduler(model.cfg, "ddim", n)
    guide = DualGuidance(7.5, 2.0)  # the sampler's own three-branch guidance, run as a sampler would
    teacher_ts = teacher_sched.timesteps.tolist()
    for k, tau in enumerate(student_sched.timesteps.tolist()):
        z = x + 0.1 * k
        i = teacher_ts.index(tau)
        with torch.no_grad():
            z1 = teacher_sched.step(guide(task.teacher, z, torch.tensor(tau), cond, 0), tau, z).prev_sample
            mid = teacher_ts[i + 1]
            z2 = teacher_sched.step(guide(task.teacher, z1, torch.tensor(mid), cond, 0), mid, z1).prev_sample
            step = torch.tensor([k])
            got = task.teacher_two_steps(z, step, ctx, null, img, mask, torch.tensor([[7.5, 2.0]]),
                                         torch.tensor([3]), img)
        torch.testing.assert_close(got, z2, atol=1e-4, rtol=1e-4)
        target = one_step_target(z, got, alpha_bar_at(task.ddim, torch.tensor([tau])),
                                 alpha_bar_at(task.ddim, task.prev[step]), model.cfg.prediction_type)
        one = student_sched.step(target, tau, z)
        # The student's single DDIM step lands where the teacher's two did (the last one on the clean latent).
        torch.testing.assert_close(one.prev_sample, z2, atol=2e-4, rtol=1e-4)
        if k == n - 1:
            torch.testing.assert_close(one.pred_original_sample, z2, atol=2e-4, rtol=1e-4)
    batch = task.make_batch(torch.Generator().manual_seed(0))
    assert set(batch["t"].tolist()) <= set(student_sched.timesteps.tolist())
    loss, _ = task(batch)
    assert torch.isfinite(loss)


def test_distilled_student_samples_with_one_evaluation_per_step(tmp_path):
    model = tiny_model(overrides=ENC)
    stage = _stage("distill-guidance")
    model, _ = _task(GuidanceDistillTask, model, stage)
    model.sampling = dataclasses.replace(model.sampling, scheduler="ddim", steps=4, guided_steps=4,
                                         image_guidance=7.5, text_guidance=2.0)
    pipe = AnimatePipeline(model)
    x, ctx, img, mask = _inputs(model)
    cond = IP2PConditions(context=ctx, null_context=torch.zeros_like(ctx), image_latent=img)
    lat = pipe.sample_latents(cond, model.sampling)
    assert lat.shape == x.shape and bool(torch.isfinite(lat).all())
    assert pipe.stats["steps"] == 4 and pipe.stats["nfe"] == 4 and pipe.stats["forwards"] == 4
    assert [b for b, _ in pipe.net.calls] == [2] * 4  # one B-video forward per step, no 3B branches
    # The teacher (no embedding) at the same scales needs three evaluations per guided step.
    teacher = AnimatePipeline(tiny_model(overrides=ENC))
    teacher.sample_latents(cond, model.sampling)
    assert teacher.stats["nfe"] == 12


@pytest.mark.slow  # 150 + 3 + warm-up forwards: ~10 s on a shared core
def test_bench_naive_is_150_evaluations_and_distilled_is_measured(tmp_path):
    from animated_stickers.sampling.bench import run_bench

    small = ENC + ["resolution=32", "unet.block_out_channels=[16,16]", "unet.head_dim=8", "unet.norm_num_groups=4",
                   "unet.cross_attention_dim=16"]
    folder = save_model(tiny_model(overrides=small), tmp_path / "teacher")
    student = tiny_model(overrides=small)
    student.unet.add_guidance_embedding()
    student = with_config(student, distill_config(student, _stage("distill-guidance")))
    student.sampling = dataclasses.replace(student.sampling, scheduler="ddim", steps=4, guided_steps=4)
    dfolder = save_model(student, tmp_path / "student")
    result = run_bench(model=folder, distilled=dfolder, only=["naive", "distilled"], batch=1, threads=1,
                       ablate=False, decoder=False)
    rows = {r["name"]: r for r in json.loads(json.dumps(result))["configs"]}
    assert rows["naive"]["nfe"] == 150 and rows["naive"]["unet_calls"] == 150
    assert rows["naive"]["scheduler"] == "ddim" and rows["naive"]["steps"] == 50
    d = rows["distilled"]
    assert d["nfe"] == 4 and d["steps"] == 4
    for key in ("seconds_per_sticker", "speedup_vs_naive", "floor_ratio"):
        assert d[key] > 0


@pytest.mark.slow  # a whole smoke recipe (VAE, t2i, video) before the two distillation stages
def test_recipe_runs_guidance_then_step_distillation_and_samples_with_the_student(tmp_path):
    from animated_stickers.training.recipes import SMOKE_DATA, get_recipe
    from animated_stickers.training.stages import run_recipe
    from training_fixtures import make_prepared

    recipe = get_recipe("smoke")
    recipe.stages = [s for s in recipe.stages if s.kind in ("vae", "t2i", "video")] + [
        Stage("guidance", "distill-guidance", 2, batch_size=2, resolution=32, data=SMOKE_DATA, checkpoint_every=1),
        Stage("steps-2", "distill-steps", 2, batch_size=2, resolution=32, data=SMOKE_DATA, checkpoint_every=1,
              student_steps=2),
    ]
    done = run_recipe(recipe, tmp_path / "run", [make_prepared(tmp_path / "data")])
    assert [d.parent.name for d in done][-2:] == ["guidance", "steps-2"]
    student = load_model(done[-1])
    assert student.unet.guidance_embedded and student.cfg.unet.guidance_embedding
    assert (student.sampling.scheduler, student.sampling.steps) == ("ddim", 2)
    pipe = AnimatePipeline(student)
    x, ctx, img, _ = _inputs(student, b=1)
    pipe.sample_latents(IP2PConditions(context=ctx, null_context=torch.zeros_like(ctx), image_latent=img),
                        dataclasses.replace(student.sampling, image_guidance=7.5, text_guidance=2.0))
    assert pipe.stats["nfe"] == 2


def test_consistency_target_is_the_ema_net_one_teacher_ddim_step_earlier_and_lcm_samples_in_n_steps():
    model = tiny_model(overrides=ENC)
    model.sampling = dataclasses.replace(model.sampling, image_guidance=1.0, text_guidance=1.0, anchor=False)
    model, task = _task(ConsistencyDistillTask, model, _stage("distill-consistency", student_steps=4))
    assert not any(p.requires_grad for p in task.target_net.parameters())
    assert any(k.startswith("target_net.") for k in task.state_dict())  # resumable EMA target
    x, ctx, img, mask = _inputs(model, b=1)
    ddim, lcm = make_scheduler(model.cfg, "ddim", LCM_GRID), make_scheduler(model.cfg, "lcm", LCM_GRID)
    ones = torch.ones(1, 2)
    for t in (999, 519, 19):
        tt = torch.tensor([t])
        with torch.no_grad():
            z_s = task.teacher_step(x, tt, ctx, ctx, img, mask, ones, torch.tensor([3]), img)
            ref = ddim.step(task.teacher(x, tt, ctx, img, mask), t, x).prev_sample  # diffusers' DDIM step
            torch.testing.assert_close(z_s, ref, atol=1e-4, rtol=1e-4)
            s = t - 1000 // LCM_GRID
            f = task.consistency(task.target_net, z_s, torch.tensor([max(s, -1)]), ctx, img, mask, ones)
            if s < 0:  # the boundary: f(z, clean) = z
                assert torch.equal(f, z_s)
            else:  # diffusers LCMScheduler's own boundary-condition output for the same network output
                lcm._step_index = None
                out = task.target_net(z_s, torch.tensor([s]), ctx, img, mask)
                torch.testing.assert_close(f, lcm.step(out, s, z_s).denoised, atol=1e-4, rtol=1e-4)
    batch = task.make_batch(torch.Generator().manual_seed(0))
    loss, _ = task(batch)
    assert torch.isfinite(loss)
    assert model.sampling.scheduler == "lcm"
    pipe = AnimatePipeline(model)
    pipe.sample_latents(IP2PConditions(context=ctx, null_context=torch.zeros_like(ctx), image_latent=img),
                        model.sampling)
    assert pipe.stats["steps"] == 4 and pipe.stats["nfe"] == 4
