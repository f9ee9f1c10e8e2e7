"""`stickers bench`'s decoder section: reference-guided decoding (models/decoder.py) vs decode-and-upscale.

One sticker's 8 frames of latents (the synthetic sticker encoded, plus noise so the flow has work to
do) are decoded at 256 and 512 px both ways; medians over `repeats`. Parts: VAE decode at the native
size, DIS flow, full-size warp, fusion net. A model without a decoder is timed with a fresh one (the
cost does not depend on the weights).
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.checkpoint import StickerModel
from ..models.decoder import ReferenceDecoder, _frames, decode_low, decode_plain, dense_flow, warp_reference
from .rescost import median_time


@torch.no_grad()
def decoder_cost(model: StickerModel, image, sizes: tuple[int, ...] = (256, 512), repeats: int = 3) -> dict:
    """Seconds per sticker (8 frames) of plain vs reference decoding at each size, and the parts."""
    cfg = model.cfg
    dec = model.decoder or ReferenceDecoder()
    canvas = np.asarray(image.convert("RGBA").resize((cfg.resolution, cfg.resolution)), np.float32) / 255
    x = torch.from_numpy(canvas).permute(2, 0, 1)[None]  # (1, 4, 128, 128)
    z = model.vae.encode(x)[:, :, None].repeat(1, 1, cfg.num_frames, 1, 1)  # (1, C, T, h, w)
    z = z + 0.3 * torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    c = cfg.cond_frame
    low = decode_low(model.vae, z)
    flow = dense_flow(low, c, dec.cfg.flow_preset)
    out: dict = {"trained": model.decoder is not None, "frames": cfg.num_frames, "config": dec.cfg.to_dict(),
                 "vae_decode_native_s": round(median_time(lambda: decode_low(model.vae, z), repeats), 4),
                 "flow_s": round(median_time(lambda: dense_flow(low, c, dec.cfg.flow_preset), repeats), 4)}
    for size in sizes:
        ref = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic").clamp(0, 1)
        warped = warp_reference(ref, flow)
        plain_s = median_time(lambda: decode_plain(model.vae, z, size), repeats)
        ref_s = median_time(lambda: dec.decode(model.vae, z, ref, c), repeats)
        out[f"{size}px"] = {
            "plain_s": round(plain_s, 4), "reference_s": round(ref_s, 4), "extra_s": round(ref_s - plain_s, 4),
            "warp_s": round(median_time(lambda: warp_reference(ref, flow), repeats), 4),
            "fusion_s": round(median_time(lambda: dec.fuse(_frames(low), _frames(warped), _frames(flow)), repeats), 4)}
    return out


def add_shares(cost: dict, seconds_per_sticker: float, plain_decode_s: float) -> None:
    """Each size's reference decode as a share of one sticker's total time with it (issue 11: <= 30%)."""
    for key, row in cost.items():
        if key.endswith("px"):
            total = seconds_per_sticker - plain_decode_s + row["reference_s"]
            row["share_of_sticker"] = round(row["reference_s"] / total, 3)
