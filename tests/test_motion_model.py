"""The learned motion model's data path, network, sampler and training stage (issue 28), at toy sizes."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import torch

from animated_stickers.data.motion import SPECTRAL_EXT, read_spectral
from animated_stickers.data.motion_loader import MotionLoaderConfig, StickerMotion
from animated_stickers.motion import spectral
from test_motion_spectral import bobbing_disc
from training_fixtures import make_data_root

TINY = {"block_out_channels": [16, 32], "attention_blocks": [False, True], "head_dim": 8, "norm_num_groups": 4,
        "size": 16, "still_size": 32, "patch": 2, "text": {"kind": "minilm", "max_length": 8}}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """4 looping bouncing discs prepared with and without motion targets."""
    from animated_stickers.data.shards import PrepareOptions, prepare
    from animated_stickers.data.sources import fluent_items

    tmp = tmp_path_factory.mktemp("motion")
    root = make_data_root(tmp / "cache", n_anim=4, n_still=1)
    items = fluent_items(root, "animated")
    opts = dict(with_mv=False, bucket_score="frame_diff", progress=False)
    prepare(items, tmp / "plain", PrepareOptions(**opts))
    prepare(items, tmp / "motion", PrepareOptions(**opts, motion_targets=True, motion_phases=3))
    return tmp


def _parts(folder):
    from animated_stickers.data.loader import iter_tar, list_shards

    return [parts for path in list_shards(str(folder), None, None) for _, parts in iter_tar(path)]


def test_prepare_stores_targets_only_when_asked(prepared):
    plain, motion = _parts(prepared / "plain"), _parts(prepared / "motion")
    assert plain and all(SPECTRAL_EXT not in p and "spectral" not in json.loads(p["json"]) for p in plain)
    assert len(motion) == len(plain)
    for p in motion:
        meta = json.loads(p["json"])
        vol = read_spectral(p[SPECTRAL_EXT])
        assert vol.shape == (3, 16, 64, 64) and vol.dtype == np.float16
        assert len(meta["spectral"]["phases"]) == 3 and meta["spectral"]["units"] == "canvas"
        # A disc bouncing by size/6: the first harmonic carries the motion, vertically.
        amp = spectral.motion_amplitude(vol[0].astype(np.float32))
        assert 0.03 < amp.max() < 0.3
        y = np.abs(vol[0, 2:4].astype(np.float32)).max()
        assert y > 3 * np.abs(vol[0, 0:2].astype(np.float32)).max()


def test_targets_are_added_to_a_folder_prepared_without_them(prepared, tmp_path):
    from animated_stickers.data.shards import PrepareOptions, prepare
    from animated_stickers.data.sources import fluent_items

    items = fluent_items(prepared / "cache", "animated")
    opts = dict(with_mv=False, bucket_score="frame_diff", progress=False)
    prepare(items, tmp_path / "p", PrepareOptions(**opts))
    assert not any(SPECTRAL_EXT in p for p in _parts(tmp_path / "p"))
    report = prepare(items, tmp_path / "p", PrepareOptions(**opts, motion_targets=True, motion_phases=2))
    assert report.analysed_now == len(items) and report.shards_written >= 1
    assert all(read_spectral(p[SPECTRAL_EXT]).shape[0] == 2 for p in _parts(tmp_path / "p"))


def test_procedural_clips_get_their_exact_motion(tmp_path):
    from animated_stickers.data.motion import procedural_spectral_target
    from animated_stickers.data.shards import PrepareOptions, prepare
    from animated_stickers.data.sources import fluent_items, procedural_items
    from animated_stickers.motion.procedural import animate_still
    from animated_stickers.rgba import premultiply

    root = make_data_root(tmp_path / "cache", n_anim=0, n_still=1, size=96)
    from PIL import Image

    still = np.asarray(Image.open(fluent_items(root, "still")[0].path).convert("RGBA"))
    frames = animate_still(still, "slide", size=64, num_frames=24, seed=0)
    exact, info = procedural_spectral_target(frames[0][..., 3], "slide", 0, 24, 24)
    assert exact.shape == (1, 16, 64, 64) and info["phases"] == [0] and info["exact"]
    loop = frames[[round(i * 24 / 16) % 24 for i in range(16)]]  # the 16 loop positions prepare uses
    measured = spectral.volume_from_frames(premultiply(loop.astype(np.float32) / 255))
    inside = frames[0][..., 3] > 128
    a = exact[0].astype(np.float32)[:, inside].ravel()  # all harmonics: a slide may cycle 1-3 times a loop
    b = measured[:, inside].ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.8  # DIS sees the motion the generator made
    # Through prepare: one exact phase, the still itself.
    items = procedural_items(fluent_items(root, "still"), 1)
    prepare(items, tmp_path / "p", PrepareOptions(with_mv=False, bucket_score="frame_diff", progress=False,
                                                 procedural_size=64, motion_targets=True))
    parts = _parts(tmp_path / "p")
    meta = json.loads(parts[0]["json"])
    assert meta["spectral"]["exact"] and meta["spectral"]["phases"] == [0]
    assert read_spectral(parts[0][SPECTRAL_EXT]).shape == (1, 16, 64, 64)


def test_the_motion_loader_yields_still_caption_volume_with_flips(prepared):
    ds = StickerMotion(MotionLoaderConfig(str(prepared / "motion"), resolution=64, p_flip=0.5, p_affine=0.0,
                                          seed=1, epochs=3))
    ex = list(ds)
    assert len(ex) == 12
    assert {e["flip"] for e in ex} == {True, False}
    for e in ex:
        assert e["still"].shape == (4, 64, 64) and e["volume"].shape == (16, 64, 64)
        assert e["still"][3].max() > 0.9 and e["still"][3, 0, 0] == 0  # a sticker on transparency
        assert e["drop_text"] or e["prompt"] == e["caption"]
    # A flipped example is the mirror image of the unflipped one (still and motion's x component).
    by = {}
    for e in ex:
        by.setdefault((e["key"], e["phase"]), {})[e["flip"]] = e
    pair = next(v for v in by.values() if len(v) == 2)
    torch.testing.assert_close(pair[True]["still"], pair[False]["still"].flip(-1))
    vol = pair[False]["volume"].numpy()
    np.testing.assert_array_equal(pair[True]["volume"].numpy(), spectral.flip_volume(vol))


def test_the_motion_loader_gives_every_phase_of_a_clip_one_canonical_target(prepared):
    def examples(canonical):
        return list(StickerMotion(MotionLoaderConfig(str(prepared / "motion"), resolution=32, seed=2, epochs=3,
                                                     p_affine=0.0, canonical_phase=canonical)))

    plain, canon = examples(False), examples(True)
    assert [(e["key"], e["phase"], e["flip"]) for e in plain] == [(e["key"], e["phase"], e["flip"]) for e in canon]
    stored = {json.loads(p["json"])["key"]: read_spectral(p[SPECTRAL_EXT])
              for p in _parts(prepared / "motion") if SPECTRAL_EXT in p}
    targets = {}
    for p, c in zip(plain, canon):
        torch.testing.assert_close(p["still"], c["still"])  # the still is the stored phase's own frame
        consensus = spectral.consensus_volume(stored[c["key"]])
        want = spectral.canonical_phase(spectral.flip_volume(consensus)) if c["flip"] else consensus
        np.testing.assert_allclose(c["volume"].numpy(), want, atol=1e-6)
        targets.setdefault((c["key"], c["flip"]), set()).add(c["phase"])
    # the plain loader gives each stored phase its own volume; the canonical one, one target per clip
    assert any(len(phases) > 1 for phases in targets.values())
    assert any(np.abs(p["volume"].numpy() - c["volume"].numpy()).max() > 1e-4 for p, c in zip(plain, canon))


def test_rotation_and_scale_turn_the_motion_with_the_still():
    from animated_stickers.data.motion_loader import rotate_scale
    from animated_stickers.rgba import premultiply

    # A uniform rightward motion turned 90 degrees counter-clockwise on screen points up (y grows down).
    vol = np.zeros((16, 32, 32), np.float32)
    vol[0] = 0.05  # Re C_1.x
    still = np.zeros((64, 64, 4), np.uint8)
    still[20:40, 28:36] = 255
    s2, v2 = rotate_scale(still, vol, 90.0, 1.0)
    assert s2[30:34, 20:40, 3].min() == 255 and s2[10:20, 30:34, 3].max() == 0  # the bar lies down
    np.testing.assert_allclose(v2[:4, 16, 16], [0, 0, -0.05, 0], atol=1e-6)
    np.testing.assert_allclose(rotate_scale(still, vol, 0.0, 0.8)[1][:4, 16, 16], [0.04, 0, 0, 0], atol=1e-6)
    # Against DIS on turned frames: a bouncing disc turned by 30 degrees moves along the turned axis.
    frames = (bobbing_disc(amplitude=5.0, radius=11.0) * 255).astype(np.uint8)
    measured = spectral.volume_from_frames(premultiply(frames.astype(np.float32) / 255))
    turned_frames = np.stack([rotate_scale(f, measured, 30.0, 1.0)[0] for f in frames])
    expected = spectral.volume_from_frames(premultiply(turned_frames.astype(np.float32) / 255))
    got = rotate_scale(frames[0], measured, 30.0, 1.0)[1]
    a, b = got[:4, 26:38, 26:38].ravel(), expected[:4, 26:38, 26:38].ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.9


def test_motion_captions_name_the_emoji_and_its_measured_motion():
    from animated_stickers.data.captions import motion_model_caption

    meta = {"label": "grinning face", "motion": None, "procedural_motion": "bounce", "procedural_seed": 0}
    caps = {motion_model_caption(meta, random.Random(i)) for i in range(60)}
    assert len(caps) >= 8  # varied templates
    assert sum("grinning face" in c for c in caps) >= len(caps) * 0.6
    assert any("bounc" in c or "up and down" in c for c in caps)
    assert motion_model_caption({"label": "grinning face"}, random.Random(0)) in {
        "grinning face", "animated grinning face", "a moving grinning face sticker"}


def test_network_shapes_save_load_and_refusals(tmp_path):
    from animated_stickers.models.motion_net import (
        MotionModelError,
        MotionNet,
        load_motion_model,
        motion_config,
        save_motion_model,
    )

    torch.manual_seed(0)
    net = MotionNet(motion_config(TINY)).eval()
    x = torch.randn(2, 16, 16, 16)
    still = net.still_input(torch.rand(2, 4, 32, 32), keep=torch.tensor([True, False]))
    assert still.shape == (2, 16, 16, 16) and not still[1].any()
    out = net(x, torch.tensor([10, 900]), still, torch.randn(2, 8, 384))
    assert out.shape == x.shape
    folder = save_motion_model(net, tmp_path / "m")
    again = load_motion_model(folder)
    torch.testing.assert_close(again(x, torch.tensor([10, 900]), still, torch.zeros(2, 8, 384)),
                               net(x, torch.tensor([10, 900]), still, torch.zeros(2, 8, 384)))
    from safetensors.torch import load_file, save_file

    good = load_file(str(folder / "motion.safetensors"))
    name = next(k for k in good if k.endswith("conv_in.weight"))
    for broken, says in [({k: v for k, v in good.items() if k != name}, "missing"),
                         ({**good, name: good[name][:1]}, "shape"),
                         ({**good, name: good[name] * float("nan")}, "non-finite")]:
        save_file(broken, str(folder / "motion.safetensors"))
        with pytest.raises(MotionModelError, match=says):
            load_motion_model(folder)
    (folder / "config.json").write_text('{"kind": "video"}')
    with pytest.raises(MotionModelError, match="not a motion model"):
        load_motion_model(folder)


def test_sampler_runs_guided_and_unguided():
    from animated_stickers.diffusion.motion import sample_spectral
    from animated_stickers.models.motion_net import MotionNet, motion_config

    torch.manual_seed(0)
    net = MotionNet(motion_config(TINY)).eval()
    still, text, null = torch.rand(1, 4, 32, 32), torch.randn(1, 8, 384), torch.zeros(1, 8, 384)
    a = sample_spectral(net, still, text, null, steps=3, generator=torch.Generator().manual_seed(1))
    b = sample_spectral(net, still, text, null, steps=3, image_guidance=1.5, text_guidance=2.0,
                        generator=torch.Generator().manual_seed(1))
    assert a.shape == b.shape == (1, 16, 16, 16) and torch.isfinite(b).all() and not torch.equal(a, b)
    flows = spectral.render_flows(spectral.denormalise(a[0].numpy(), net.cfg.scales), 48)
    assert flows.shape == (48, 16, 16, 2) and not flows[0].any()


def test_motion_stage_trains_resumes_exactly_and_writes_a_model(prepared, tmp_path):
    from animated_stickers.config import to_dict
    from animated_stickers.models.motion_net import load_motion_model
    from animated_stickers.training.recipes import get_recipe
    from animated_stickers.training.stages import run_recipe

    overrides = [f"{k}={json.dumps(v)}" for k, v in TINY.items() if k != "still_size"]
    # cross_styles=[]: the drawn styles are not fetched here (test_cross_style.py covers those views)
    recipe = get_recipe("motion-tiny", ["steps=4", "batch_size=2", "resolution=32", "checkpoint_every=2",
                                        "log_every=1", "warmup=1", "cross_styles=[]"])
    recipe.model = overrides
    data = [prepared / "motion"]
    assert run_recipe(recipe, tmp_path / "a", data, max_steps=2) == []  # budget used up mid-stage
    done = run_recipe(recipe, tmp_path / "a", data)  # resumes from checkpoint-2
    straight = run_recipe(recipe, tmp_path / "b", data)
    assert done and straight
    a, b = load_motion_model(done[0]), load_motion_model(straight[0])
    assert to_dict(a.cfg) == to_dict(b.cfg) and a.cfg.size == 16 and a.cfg.still_size == 32
    assert a.cfg.canonical_phase  # the recipe's canonical targets, recorded for sampling
    assert json.loads((done[0] / "config.json").read_text())["config"]["canonical_phase"] is True
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    rows = [json.loads(line) for line in (tmp_path / "b" / "motion" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in rows)
    assert not list((tmp_path / "a" / "motion").rglob("*.pkl")) and not list((tmp_path / "a").rglob("*.bin"))


def test_streaming_loader_seeds_fix_the_data(prepared):
    cfg = MotionLoaderConfig(str(prepared / "motion"), resolution=32, seed=3, epochs=1)
    first = [(e["key"], e["phase"], e["flip"], e["prompt"]) for e in itertools.islice(StickerMotion(cfg), 4)]
    again = [(e["key"], e["phase"], e["flip"], e["prompt"]) for e in itertools.islice(StickerMotion(cfg), 4)]
    assert first == again


def test_a_sticker_animated_by_the_motion_model_any_size_and_frame_count():
    from animated_stickers.models.motion_net import MotionNet, motion_config
    from animated_stickers.rgba import premultiply
    from animated_stickers.sampling.motion_model import motion_volume, render_motion

    torch.manual_seed(0)
    net = MotionNet(motion_config(TINY)).eval()
    still = np.zeros((40, 70, 4), np.uint8)  # not square: the field lives on its long side's square
    still[10:30, 20:50] = (200, 60, 30, 255)

    def text(prompts):
        return [torch.stack([torch.full((8, 384), float(len(p) % 7) / 7) for p in prompts])]

    vol = motion_volume(net, text, still, "a red block rocking", seed=1, steps=3)
    assert vol.shape == (16, 16, 16) and np.isfinite(vol).all()
    assert not np.array_equal(vol, motion_volume(net, text, still, "a red block rocking", seed=2, steps=3))
    frames = render_motion(still, vol, 30)
    assert frames.shape == (30, 40, 70, 4)
    np.testing.assert_allclose(premultiply(frames[0]), premultiply(still.astype(np.float32) / 255), atol=1e-6)
    assert np.abs(frames[1:] - frames[:1]).max() > 0  # it moves


def test_text_cache_eviction_keeps_this_batchs_prompts():
    """models/text.py: a full cache evicting a prompt this very batch found there (the motion run's first crash)."""
    from animated_stickers.models.text import TextEncoders

    class Fake(torch.nn.Module):
        def forward(self, prompts):
            return torch.stack([torch.full((2, 3), float(len(p))) for p in prompts])

    enc = TextEncoders.__new__(TextEncoders)
    torch.nn.Module.__init__(enc)
    enc.encoders, enc._cache = torch.nn.ModuleList([Fake()]), {}
    enc([""])  # the oldest entry
    enc([f"p{i}" for i in range(4096)])  # the cache is full
    out = enc(["", "new prompt"])[0]  # "" is found, then evicted while "new prompt" is added
    assert out.shape == (2, 2, 3) and out[0].sum() == 0 and out[1, 0, 0] == len("new prompt")


def test_sampler_recovers_the_volume_an_oracle_denoiser_knows():
    """DDIM plumbing (trailing zero-SNR grid, v-prediction, the last x0): an oracle v gives back its x0."""
    from animated_stickers.diffusion.motion import sample_spectral
    from animated_stickers.diffusion.schedules import train_scheduler
    from animated_stickers.models.motion_net import MotionNet, motion_config

    net = MotionNet(motion_config(TINY))
    target_x0 = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(5))
    ab = train_scheduler(net.cfg).alphas_cumprod

    class Oracle(torch.nn.Module):
        cfg = net.cfg
        still_input = net.still_input
        support = net.support

        def forward(self, x, t, still, text):
            a, s = ab[t].sqrt()[:, None, None, None], (1 - ab[t]).sqrt()[:, None, None, None]
            eps = (x - a * target_x0) / s.clamp_min(1e-12)
            return a * eps - s * target_x0  # v

    still = torch.rand(2, 4, 32, 32)
    still[:, 3] = 1  # opaque everywhere: the support is the whole canvas
    out = sample_spectral(Oracle(), still, torch.zeros(2, 8, 384), torch.zeros(2, 8, 384), steps=4)
    torch.testing.assert_close(out, target_x0, atol=1e-4, rtol=1e-4)
    # A small sticker in one corner: the sampled field is the oracle's near it and zero far from it.
    still[:, 3] = 0
    still[:, 3, :8, :8] = 1
    out = sample_spectral(Oracle(), still, torch.zeros(2, 8, 384), torch.zeros(2, 8, 384), steps=4)
    torch.testing.assert_close(out[..., :4, :4], target_x0[..., :4, :4], atol=1e-4, rtol=1e-4)
    assert out[..., 12:, 12:].abs().max() == 0


def test_training_draws_high_noise_more_often():
    from animated_stickers.training.motion_task import high_noise_timesteps

    t = high_noise_timesteps(20000, 1000, torch.Generator().manual_seed(0)).float()
    assert t.min() >= 0 and t.max() <= 999
    assert 640 < t.mean() < 690  # E[t] = 1000 * 2/3
    assert (t >= 500).float().mean() > 0.7  # 3/4 of the draws in the upper half


def test_procedural_captions_always_say_the_drawn_motion():
    from animated_stickers.data.captions import motion_model_caption

    meta = {"label": "grinning face", "procedural_motion": "spin", "procedural_seed": 0}
    caps = [motion_model_caption(meta, random.Random(i)) for i in range(80)]
    assert all(c not in {"grinning face", "animated grinning face", "a moving grinning face sticker"} for c in caps)
    assert all("spin" in c or "turn" in c or "round" in c or "rotat" in c for c in caps), caps[:5]
