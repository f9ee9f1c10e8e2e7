"""Model core: inflation exactness, IP2P widening, VAE, save/load, context-once, errors, presets."""

from __future__ import annotations

import json

import pytest
import torch

from animated_stickers.config import ConfigError, model_config
from animated_stickers.models.checkpoint import ModelLoadError, StickerModel, load_model, save_model
from animated_stickers.models.cli import preset_info
from animated_stickers.models.unet import StickerUNet

SMALL = ["resolution=32", "vae.block_out_channels=[8,16]", "vae.norm_num_groups=4",
         "unet.block_out_channels=[16,32]", "unet.attention_blocks=[true,true]", "unet.head_dim=8",
         "unet.norm_num_groups=4", "unet.cross_attention_dim=16"]


@pytest.fixture
def cfg():
    torch.manual_seed(0)
    return model_config("tiny", overrides=SMALL)


def _text(b: int, cfg) -> list[torch.Tensor]:
    return [torch.randn(b, 6, 384)]


@pytest.mark.parametrize("frames", [1, 8, 16])
def test_fresh_inflation_reproduces_image_model_frame_by_frame(cfg, frames):
    unet = StickerUNet(cfg).eval()
    # Give the 2D model non-trivial weights everywhere (fresh diffusers inits zero some outputs).
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.02 * torch.randn_like(p))
    b, h = 2, cfg.latent_size
    x, t, text = torch.randn(b, 8, frames, h, h), torch.tensor([5, 700]), _text(b, cfg)
    with torch.no_grad():
        ref = torch.cat([unet(x[:, :, i:i + 1], t, text) for i in range(frames)], dim=2)
        before = {k: v.clone() for k, v in unet.unet.state_dict().items()}
        unet.inflate()
        out = unet(x, t, text, image_latent=torch.randn(b, 8, h, h))
    assert (out - ref).abs().max().item() <= 1e-5
    after = unet.unet.state_dict()
    for k, v in before.items():  # 2D weights unchanged and under the same names
        if k.startswith("conv_in"):
            continue
        assert torch.equal(after[k], v), k
    assert any(".temporal." in k for k in after)


def test_conv_in_widened_with_zero_weights_for_image_latent(cfg):
    unet = StickerUNet(cfg)
    old = unet.unet.conv_in.weight.detach().clone()
    unet.inflate()
    w = unet.unet.conv_in.weight
    assert w.shape[1] == 17  # noisy latent + sticker latent + conditioning-frame mask
    assert torch.equal(w[:, :8], old)
    assert torch.count_nonzero(w[:, 8:]) == 0


def test_inflated_model_mixes_frames_once_trained(cfg):
    unet = StickerUNet(cfg).inflate().eval()
    with torch.no_grad():
        for n, p in unet.named_parameters():
            if ".temporal." in n:
                p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(1, 8, 4, cfg.latent_size, cfg.latent_size)
    text = _text(1, cfg)
    with torch.no_grad():
        a = unet(x, torch.tensor([10]), text)
        x2 = x.clone()
        x2[:, :, 0] += 1.0  # change frame 0 only
        b = unet(x2, torch.tensor([10]), text)
    assert (a[:, :, 3] - b[:, :, 3]).abs().max() > 1e-4  # frame 3 now depends on frame 0


def test_context_once_equals_naive_repeat(cfg):
    unet = StickerUNet(cfg).inflate().eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.02 * torch.randn_like(p))
    x, t, text = torch.randn(3, 8, 8, 8, 8), torch.tensor([1, 400, 999]), _text(3, cfg)
    img = torch.randn(3, 8, 8, 8)
    with torch.no_grad():
        unet.set_context_once(True)
        once = unet(x, t, text, img)
        unet.set_context_once(False)
        naive = unet(x, t, text, img)
    assert (once - naive).abs().max().item() <= 1e-5


def test_tiny_forward_backward_updates_temporal_layers(cfg):
    unet = StickerUNet(cfg).inflate()
    x = torch.randn(1, 8, 8, 8, 8)
    out = unet(x, torch.tensor([500]), _text(1, cfg), torch.randn(1, 8, 8, 8))
    out.pow(2).mean().backward()
    grads = {n: p.grad for n, p in unet.named_parameters() if ".temporal." in n and p.grad is not None}
    assert grads and any(g.abs().sum() > 0 for g in grads.values())


def test_vae_rgba_round_trip_shapes_and_alpha_range(cfg):
    model = StickerModel.create(cfg)
    video = torch.rand(2, 4, 8, 32, 32)
    z = model.vae.encode(video)
    assert z.shape == (2, 8, 8, 16, 16)
    rec = model.vae.decode(z)
    assert rec.shape == video.shape
    assert rec.min() >= 0 and rec.max() <= 1
    # Straight-alpha output: fully transparent pixels carry no colour.
    transparent = rec[:, 3:4] <= 1e-3
    assert torch.all(rec[:, :3][transparent.expand(-1, 3, -1, -1, -1)] == 0)


def test_save_load_round_trip_is_bit_exact(cfg, tmp_path):
    model = StickerModel.create(cfg)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    for a, b in [(model.unet, loaded.unet), (model.vae, loaded.vae)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["stage"] == "video" and meta["model"]["resolution"] == 32


def test_fp16_save_halves_files_and_loads(cfg, tmp_path):
    model = StickerModel.create(cfg)
    save_model(model, tmp_path / "a")
    save_model(model, tmp_path / "b", dtype=torch.float16)
    assert (tmp_path / "b/unet.safetensors").stat().st_size < 0.6 * (tmp_path / "a/unet.safetensors").stat().st_size
    loaded = load_model(tmp_path / "b")
    assert next(loaded.unet.parameters()).dtype == torch.float32


def test_load_errors_are_clear(cfg, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope")
    save_model(StickerModel.create(cfg), tmp_path / "m")
    (tmp_path / "m/unet.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="corrupted"):
        load_model(tmp_path / "m")


def test_wrong_shapes_and_channels_raise(cfg):
    unet = StickerUNet(cfg)
    with pytest.raises(ValueError, match="expected 1"):
        unet(torch.randn(1, 8, 2, 8, 8), torch.tensor([1]), _text(1, cfg))
    unet.inflate()
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        unet(torch.randn(1, 8, 8, 8), torch.tensor([1]), _text(1, cfg))
    with pytest.raises(ValueError, match="latent channels"):
        unet(torch.randn(1, 4, 2, 8, 8), torch.tensor([1]), _text(1, cfg))
    with pytest.raises(ValueError, match="image_latent shape"):
        unet(torch.randn(1, 8, 2, 8, 8), torch.tensor([1]), _text(1, cfg), torch.randn(1, 8, 4, 4))
    model = StickerModel.create(cfg)
    with pytest.raises(ValueError, match="RGBA"):
        model.vae.encode(torch.rand(1, 3, 32, 32))


def test_config_overrides_and_errors():
    cfg = model_config("tiny", overrides=["unet.head_dim=16", "cond_frame=0"])
    assert cfg.unet.head_dim == 16 and cfg.cond_frame == 0
    with pytest.raises(ConfigError, match="unknown config key 'unet.nope'"):
        model_config("tiny", overrides=["unet.nope=1"])
    with pytest.raises(ConfigError, match="cond_frame"):
        model_config("tiny", overrides=["cond_frame=8"])
    with pytest.raises(ConfigError, match="unknown preset"):
        model_config("huge")


@pytest.mark.parametrize("preset", ["sm", "med", "lg", "lg-e"])
def test_presets_match_paper_parameter_counts(preset):
    info = preset_info(preset)
    assert abs(info["rel_error_vs_paper"]) <= 0.15
    assert info["latent_channels"] == 8
