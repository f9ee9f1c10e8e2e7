"""Reference-guided decoder (issue 11): exact identity when fresh, warping, learning, save/load, detail."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from animated_stickers.config import VAEConfig, model_config
from animated_stickers.eval.detail import detail_ratio, frame_quality, ssim
from animated_stickers.models.checkpoint import ModelLoadError, StickerModel, load_model, save_model
from animated_stickers.models.decoder import (
    DecoderConfig,
    ReferenceDecoder,
    decode_low,
    decode_plain,
    dense_flow,
    warp_reference,
)
from animated_stickers.models.vae import RGBAVAE
from animated_stickers.sampling.preprocess import prepare_sticker
from animated_stickers.sampling.refdecode import output_size, reference_canvas
from animated_stickers.training.decoder_task import DecoderTask, ProceduralClipSource, drawn_stills

SMALL_VAE = VAEConfig(block_out_channels=(8, 16), norm_num_groups=4)  # downsample 2: 16x16 latents -> 32 px
SMALL_DEC = DecoderConfig(channels=8, work_size=32)


@pytest.fixture
def vae():
    torch.manual_seed(0)
    return RGBAVAE(SMALL_VAE).eval()


def test_fresh_decoder_equals_plain_decode_exactly(vae):
    z = torch.randn(2, 8, 4, 16, 16)
    ref = torch.rand(2, 4, 64, 64)
    dec = ReferenceDecoder(SMALL_DEC)
    out = dec.decode(vae, z, ref, torch.tensor([1, 3]))
    plain = decode_plain(vae, z, 64)
    assert out.shape == (2, 4, 4, 64, 64)
    assert (out - plain).abs().max().item() == 0.0
    # ...and it is the fusion's zero-init that makes it so: any last-layer weight changes the output.
    with torch.no_grad():
        dec.net[-1].bias.fill_(0.5)
    assert (dec.decode(vae, z, ref, 1) - plain).abs().max().item() > 1e-3


def test_warp_zero_flow_is_reference_and_flow_moves_it():
    ref = torch.rand(1, 4, 64, 64)
    ref[:, 3] = 1.0  # opaque: premultiplied == straight colour
    flow = torch.zeros(1, 2, 3, 32, 32)
    flow[:, 0, 2] = 1.0  # frame 2: each pixel comes from 1 low-res px (2 full-res px) to its right
    warped = warp_reference(ref, flow)  # (1, 4, 3, 64, 64)
    assert torch.allclose(warped[:, :, 0], ref, atol=1e-6)
    assert torch.allclose(warped[0, :, 2, :, :60], ref[0, :, :, 2:62], atol=1e-5)
    assert warped[0, 3, 2, :, 62:].max() == 0  # sampled outside the sticker: transparent


def test_dis_flow_finds_a_shift_and_is_zero_on_the_cond_frame():
    still = drawn_stills(1, 64)[0]
    frames = np.stack([still, np.roll(still, 3, axis=1)])  # frame 1 = frame 0 moved 3 px right
    low = torch.from_numpy(frames).float().div(255).permute(3, 0, 1, 2)[None]  # (1, 4, 2, 64, 64)
    low = torch.cat([low[:, :3] * low[:, 3:], low[:, 3:]], 1)
    flow = dense_flow(low, 0)  # (1, 2, 2, 64, 64)
    assert flow[:, :, 0].abs().max() == 0
    body = low[0, 3, 1] > 0.5
    assert abs(float(flow[0, 0, 1][body].median()) + 3) < 0.5  # frame 1 at x came from x - 3 in cond


def test_gate_learns_on_a_procedural_clip(vae):
    torch.manual_seed(0)
    source = ProceduralClipSource(drawn_stills(2, 64), size=64, frames=4, loop=16, spacing=1, cond=1)
    task = DecoderTask(vae, ReferenceDecoder(SMALL_DEC), source, batch_size=1, frames_per_clip=3, canvas=32)
    batch = task.make_batch(torch.Generator().manual_seed(1))
    assert batch["warped"].shape == (3, 4, 64, 64) and batch["plain_low"].shape == (3, 4, 32, 32)
    opt = torch.optim.Adam(task.trainable_parameters(), lr=3e-3)
    first = task(batch)[0].item()
    for _ in range(40):
        loss, logs = task(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(logs) == {"charbonnier", "sobel", "fft"}
    assert task(batch)[0].item() < 0.8 * first
    assert all(p.grad is None for p in task.vae.parameters())  # the VAE stays frozen


def test_save_load_round_trip_and_fallback(tmp_path):
    torch.manual_seed(0)
    cfg = model_config("tiny", overrides=["resolution=32", "vae.block_out_channels=[8,16]", "vae.norm_num_groups=4",
                                          "unet.block_out_channels=[16,32]", "unet.attention_blocks=[true,true]",
                                          "unet.head_dim=8", "unet.norm_num_groups=4", "unet.cross_attention_dim=16"])
    model = StickerModel.create(cfg)
    save_model(model, tmp_path / "plain")
    assert load_model(tmp_path / "plain").decoder is None  # a folder without a decoder still loads
    model.decoder = ReferenceDecoder(SMALL_DEC)
    with torch.no_grad():
        model.decoder.net[-1].weight.normal_()
    save_model(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["decoder"] == SMALL_DEC.to_dict() and (tmp_path / "m" / "decoder.safetensors").is_file()
    back = load_model(tmp_path / "m").decoder
    assert back.cfg == SMALL_DEC
    for (k, a), (_, b) in zip(model.decoder.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    meta["decoder"] = {"channels": 8, "work_size": 32, "flow_preset": "slowest"}
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="decoder"):
        load_model(tmp_path / "m")


def test_reference_canvas_lines_up_with_the_model_canvas():
    im = Image.fromarray(drawn_stills(1, 300)[0][:, 20:], "RGBA")  # 280 x 300, not square
    s = prepare_sticker(im, "x", 128)
    size = output_size([s], 128)
    assert size == 384  # 300 px rounded up to a whole multiple of the canvas
    big, placement = reference_canvas(s, size)
    assert big.size == (384, 384) and placement.box == tuple(3 * v for v in s.placement.box)
    small = np.asarray(big.resize((128, 128), Image.Resampling.BOX), np.float32)
    assert np.abs(small[..., 3] - np.asarray(s.canvas, np.float32)[..., 3]).mean() < 2.0


def test_detail_ratio_psnr_ssim():
    still = drawn_stills(1, 128)[0]
    frames = np.stack([still] * 3)
    assert detail_ratio(frames, still) == pytest.approx(1.0, abs=1e-6)
    blurred = np.asarray(Image.fromarray(still).resize((48, 48), Image.Resampling.BOX).resize((128, 128),
                                                                                          Image.Resampling.BICUBIC))
    assert detail_ratio(np.stack([blurred] * 3), still) < 0.8
    q = frame_quality(frames, frames)
    assert q["psnr"] == 100.0 and q["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert frame_quality(np.stack([blurred] * 3), frames)["psnr"] < 40
    x = np.random.default_rng(0).random((32, 32, 1)).astype(np.float32)
    assert ssim(x, 1 - x) < 0


def test_decode_low_is_premultiplied(vae):
    low = decode_low(vae, torch.randn(1, 8, 2, 16, 16))
    assert low.shape == (1, 4, 2, 32, 32) and bool((low[:, :3] <= low[:, 3:] + 1e-6).all())
