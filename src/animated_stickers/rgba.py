"""RGBA rules in one place: straight <-> premultiplied, premultiplied resizing, fit on a square and back.

Straight (not premultiplied) RGBA at the edges of the system: files, PIL images, uint8 arrays.
Anything that filters or mixes pixels works on premultiplied float32 in [0, 1], so the colour of
transparent pixels (arbitrary in real files) never leaks into visible ones (no dark fringes).
Sizes: PIL's (w, h) for images and boxes, numpy's (h, w) for arrays; each function says which.
Torch tensors use a channel dimension (1 for (N, C, H, W) and (B, C, T, H, W)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

ALPHA_EPS = 1e-6  # below this alpha a pixel has no colour
LANCZOS = Image.Resampling.LANCZOS


# --- straight <-> premultiplied -----------------------------------------------------------------

def premultiply(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA (..., 4), uint8 or float in [0, 1] -> premultiplied float32 (..., 4) in [0, 1]."""
    out = rgba.astype(np.float32) / 255.0 if rgba.dtype == np.uint8 else rgba.astype(np.float32, copy=True)
    out[..., :3] *= out[..., 3:4]
    return out


def unpremultiply(pm: np.ndarray) -> np.ndarray:
    """Premultiplied (..., 4) -> straight float32 in [0, 1]; transparent pixels get colour 0.

    Overshooting filters (Lanczos) are clamped first: alpha to [0, 1], colour to [0, alpha]
    (premultiplied colour can never exceed alpha)."""
    a = np.clip(pm[..., 3:4], 0.0, 1.0).astype(np.float32)
    rgb = np.clip(pm[..., :3], 0.0, a)
    rgb = np.where(a > ALPHA_EPS, rgb / np.maximum(a, ALPHA_EPS), 0.0)
    return np.concatenate([rgb, a], axis=-1).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 (rounded, clamped)."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def images_to_array(images: list[Image.Image]) -> np.ndarray:
    """PIL images of one size -> straight RGBA float32 (N, H, W, 4) in [0, 1]."""
    return np.stack([np.asarray(im.convert("RGBA"), np.float32) / 255.0 for im in images])


def array_to_images(frames: np.ndarray) -> list[Image.Image]:
    """Straight RGBA (N, H, W, 4) in [0, 1] -> RGBA PIL images (rounded, clamped)."""
    return [Image.fromarray(a, "RGBA") for a in to_uint8(frames)]


def premultiply_image(img: Image.Image) -> np.ndarray:
    """PIL image (any mode) -> premultiplied float32 (H, W, 4) in [0, 1]."""
    return premultiply(np.asarray(img.convert("RGBA")))


def unpremultiply_image(pm: np.ndarray) -> Image.Image:
    """Premultiplied float (H, W, 4) -> straight RGBA PIL image."""
    return Image.fromarray(to_uint8(unpremultiply(pm)), "RGBA")


def premultiply_tensor(rgba: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Straight -> premultiplied RGBA tensor (RGBA along `dim`)."""
    rgb, a = rgba.split([3, 1], dim=dim)
    return _cat([rgb * a, a], dim)


def unpremultiply_tensor(pm: torch.Tensor, eps: float = 1e-3, dim: int = 1) -> torch.Tensor:
    """Premultiplied -> straight RGBA tensor; colour of (near) transparent pixels is 0, alpha as is.

    `eps` is larger than ALPHA_EPS: decoded (not quantised) alpha is noisy near 0."""
    rgb, a = pm.split([3, 1], dim=dim)
    rgb = (rgb / a.clamp_min(eps)).where(a > eps, rgb.new_zeros(()))
    return _cat([rgb.clamp(0, 1), a], dim)


def _cat(parts: list, dim: int):
    import torch  # numpy-only callers (export, eval) do not pay for importing torch

    return torch.cat(parts, dim=dim)


# --- premultiplied resizing ---------------------------------------------------------------------

def resize_channel(x: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """One float channel (H, W) resized to `size` (w, h). Pillow resizes mode "F" exactly; 8-bit RGBa
    would lose the colour of low-alpha pixels."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(x, np.float32), "F").resize(size, resample))


def resize_premultiplied(pm: np.ndarray, hw: tuple[int, int],
                         resample: Image.Resampling | None = None) -> np.ndarray:
    """Premultiplied float frames (..., H, W, 4) -> (..., h, w, 4) for `hw` = (h, w), float32.

    `resample` None means area averaging: box when shrinking, bilinear when growing (no overshoot)."""
    h, w = hw
    if pm.shape[-3:-1] == (h, w):
        return pm.astype(np.float32)
    sh, sw = pm.shape[-3:-1]
    if resample is None:
        resample = Image.Resampling.BOX if sh >= h and sw >= w else Image.Resampling.BILINEAR
    flat = pm.reshape((-1, sh, sw, 4))  # (N, H, W, 4): any leading axes flattened
    out = np.empty((flat.shape[0], h, w, 4), np.float32)
    for i in range(flat.shape[0]):
        for c in range(4):
            out[i, :, :, c] = resize_channel(flat[i, :, :, c], (w, h), resample)
    return out.reshape(pm.shape[:-3] + (h, w, 4))


def resize_image(img: Image.Image, size: tuple[int, int], resample: Image.Resampling = LANCZOS,
                 snap: int = 2) -> Image.Image:
    """Straight RGBA image resized to `size` (w, h), filtering premultiplied float channels.

    Lanczos rings: faint alpha ripples appear around edges and inside solid areas. Alpha within
    `snap`/255 of 0 or 1 is snapped back (invisible, and it saves bytes in every format)."""
    if img.size == tuple(size):
        return img.convert("RGBA")
    arr = np.asarray(img.convert("RGBA"))
    alpha = arr[..., 3] * np.float32(1 / 255)
    # Channel by channel: an 8192 px input never holds a full (H, W, 4) float copy.
    out = np.stack([resize_channel(arr[..., c] * np.float32(1 / 255) * alpha, size, resample) for c in range(3)]
                   + [resize_channel(alpha, size, resample)], axis=-1)  # (h, w, 4) premultiplied
    if snap:
        a = out[..., 3:4]
        eps = (snap + 0.5) / 255.0
        out = np.where(a < eps, 0.0, np.where(a > 1.0 - eps, out / np.maximum(a, ALPHA_EPS), out))
    return unpremultiply_image(out)


# --- fit on a transparent canvas and back -------------------------------------------------------

def fit_box(size: tuple[int, int], canvas: tuple[int, int], fill: float = 1.0) -> tuple[int, int, int, int]:
    """(left, top, w, h): `size` (w, h) scaled with its aspect kept to fill `fill` of `canvas` (w, h)
    on the limiting side, centred."""
    w, h = size
    cw, ch = canvas
    s = fill * min(cw / w, ch / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return (cw - nw) // 2, (ch - nh) // 2, nw, nh


@dataclass(frozen=True)
class Placement:
    """Where an image sits on the square canvas: box (left, top, width, height), original (w, h)."""

    original_size: tuple[int, int]
    box: tuple[int, int, int, int]
    canvas: int


def fit_on_square(img: Image.Image, side: int, fill: float = 1.0) -> tuple[Image.Image, Placement]:
    """Resize (aspect kept, premultiplied Lanczos) so the long side is `fill` x `side`, centred on a
    transparent side x side square; the Placement lets `restore_from_square` undo it."""
    left, top, nw, nh = fit_box(img.size, (side, side), fill)
    out = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    out.paste(resize_image(img, (nw, nh)), (left, top))
    return out, Placement(original_size=img.size, box=(left, top, nw, nh), canvas=side)


def restore_from_square(frame: Image.Image, placement: Placement) -> Image.Image:
    """Crop a canvas frame to the image's box and resize it back to the original size."""
    if frame.size != (placement.canvas, placement.canvas):
        raise ValueError(f"frame size {frame.size}: expected the {placement.canvas} px canvas")
    left, top, w, h = placement.box
    return resize_image(frame.convert("RGBA").crop((left, top, left + w, top + h)), placement.original_size)


def fit_premultiplied(pm: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Premultiplied image (H, W, 4) fitted inside `hw` = (h, w), aspect kept, centred on transparency."""
    h, w = hw
    left, top, nw, nh = fit_box((pm.shape[1], pm.shape[0]), (w, h))
    out = np.zeros((h, w, 4), np.float32)
    out[top:top + nh, left:left + nw] = resize_premultiplied(pm, (nh, nw))
    return out


def fit_pad_frames(frames: np.ndarray, side: int) -> np.ndarray:
    """(T, H, W, 4) uint8 straight RGBA -> (T, side, side, 4): long side fitted, padded transparent."""
    return np.stack([np.asarray(fit_on_square(Image.fromarray(f, "RGBA"), side)[0]) for f in frames])


def center_crop_frames(frames: np.ndarray, side: int, resample: Image.Resampling = Image.Resampling.BICUBIC
                       ) -> np.ndarray:
    """(T, H, W, 4) uint8 straight RGBA -> (T, side, side, 4): short side scaled to `side`, centre cropped."""
    t, h, w, _ = frames.shape
    if (h, w) == (side, side):
        return frames
    s = side / min(h, w)
    nw, nh = max(side, round(w * s)), max(side, round(h * s))
    left, top = (nw - side) // 2, (nh - side) // 2
    out = np.empty((t, side, side, 4), np.uint8)
    for i, f in enumerate(frames):
        big = resize_image(Image.fromarray(f, "RGBA"), (nw, nh), resample, snap=0)
        out[i] = np.asarray(big.crop((left, top, left + side, top + side)))
    return out
