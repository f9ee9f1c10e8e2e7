"""A model folder: config.json + vae.safetensors + unet.safetensors (+ MODEL_CARD.md). No pickles.

`StickerModel` bundles the parts; `load_model(dir)` restores it in one call, `save_model` writes it
(each file to a temp name, then renamed, so a crash never leaves a half-written model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, atomic_write_text
from ..config import (
    DEFAULT_MODEL_DIR,  # noqa: F401 (re-exported)
    ConfigError,
    ModelConfig,
    SamplingConfig,
    from_dict,
    to_dict,
    validate,
)
from ..errors import UserError
from .decoder import DecoderConfig, ReferenceDecoder
from .text import TextEncoders, load_text_encoders
from .unet import StickerUNet
from .vae import RGBAVAE

FORMAT_VERSION = 1


class ModelLoadError(UserError, RuntimeError):
    """A model folder that cannot be loaded; the message names the folder and the problem (a RuntimeError
    too, as it was before it became a UserError)."""


@dataclass
class StickerModel:
    """VAE + UNet (+ lazily loaded frozen text encoders) and the recommended sampling settings."""

    cfg: ModelConfig
    vae: RGBAVAE
    unet: StickerUNet
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    _text: TextEncoders | None = None
    source: str = ""  # the folder it was loaded from (for error messages); "" when built in memory
    decoder: ReferenceDecoder | None = None  # reference-guided decoder (models/decoder.py), optional

    @classmethod
    def create(cls, cfg: ModelConfig, video: bool = True) -> StickerModel:
        """Fresh random weights; `video=False` gives the text-to-image stage."""
        unet = StickerUNet(cfg)
        if video:
            unet.inflate()
        return cls(cfg=cfg, vae=RGBAVAE(cfg.vae), unet=unet)

    @property
    def stage(self) -> str:
        return "video" if self.unet.inflated else "t2i"

    @property
    def text(self) -> TextEncoders:
        if self._text is None:
            self._text = load_text_encoders(self.cfg.text.encoders)
        return self._text

    def to(self, device=None, dtype: torch.dtype | None = None) -> StickerModel:
        self.vae.to(device=device, dtype=dtype)
        self.unet.to(device=device, dtype=dtype)
        if self.decoder is not None:
            self.decoder.to(device=device, dtype=dtype)
        return self

    def eval(self) -> StickerModel:
        self.vae.eval()
        self.unet.eval()
        if self.decoder is not None:
            self.decoder.eval()
        return self


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, dtype: torch.dtype | None) -> None:
    tensors = {k: (v.to(dtype) if dtype and v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def save_model(model: StickerModel, folder: str | Path, dtype: torch.dtype | None = None,
               extra: dict | None = None) -> Path:
    """Write the model folder; `dtype=torch.float16` halves the files (the shipped default)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save(model.vae.state_dict(), folder / "vae.safetensors", dtype)
    _atomic_save(model.unet.state_dict(), folder / "unet.safetensors", dtype)
    if model.decoder is not None:
        _atomic_save(model.decoder.state_dict(), folder / "decoder.safetensors", dtype)
    meta = {"format_version": FORMAT_VERSION, "stage": model.stage, "model": to_dict(model.cfg),
            "sampling": to_dict(model.sampling), **(extra or {})}
    if model.decoder is not None:
        meta["decoder"] = model.decoder.cfg.to_dict()
    atomic_write_text(folder / "config.json", json.dumps(meta, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> dict:
    """The folder's config.json as a dict, with one-line errors for a missing/bad folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"model folder '{folder}' does not exist")
    path = folder / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"model folder '{folder}' has no config.json (not a model folder)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"model folder '{folder}': config.json is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ModelLoadError(f"model folder '{folder}': config.json holds a {type(meta).__name__}: expected an "
                             'object {"model": {...}, "sampling": {...}}')
    return meta


def _load_weights(module: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ModelLoadError(f"model folder '{path.parent}' is missing {path.name}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"weights file '{path}' is corrupted or not safetensors ({e})") from None
    ref = module.state_dict()
    _check_tensors(state, ref, path)
    state = {k: v.to(ref[k].dtype) if k in ref else v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelLoadError(f"weights file '{path}' does not match config.json ({first})") from None


def _check_tensors(state: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], path: Path) -> None:
    """One line naming the first missing, unexpected, wrongly shaped or non-finite tensor."""
    missing, unexpected = sorted(set(ref) - set(state)), sorted(set(state) - set(ref))
    if missing:
        raise ModelLoadError(f"weights file '{path}' lacks tensor '{missing[0]}' ({len(missing)} missing): "
                             "expected the tensors config.json describes")
    if unexpected:
        raise ModelLoadError(f"weights file '{path}' has unexpected tensor '{unexpected[0]}' "
                             f"({len(unexpected)} unexpected): expected the tensors config.json describes")
    for name, t in state.items():
        if t.shape != ref[name].shape:
            raise ModelLoadError(f"weights file '{path}': tensor '{name}' has shape {tuple(t.shape)}, "
                                 f"config.json expects {tuple(ref[name].shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelLoadError(f"weights file '{path}': tensor '{name}' holds NaN or infinite values "
                                 "(a corrupted file): expected finite weights")


def check_finite_latents(latents: torch.Tensor, model: StickerModel) -> torch.Tensor:
    """The sampled latents, or ModelLoadError naming the model folder if any value is NaN/inf (broken weights
    that passed the load checks would otherwise decode to blank frames and exit 0)."""
    if not bool(torch.isfinite(latents).all()):
        raise ModelLoadError(f"model '{model.source or 'in memory'}' sampled NaN or infinite latents: its "
                             "weights are broken; expected a model folder trained by `stickers train`")
    return latents


def load_model(folder: str | Path | None = None, device: str = "cpu") -> StickerModel:
    """Load a model folder (default: the bundled `weights/tiny`) in fp32, eval mode."""
    folder = Path(folder) if folder else DEFAULT_MODEL_DIR
    meta = read_config(folder)
    for key, required in (("model", True), ("sampling", False)):
        if (required or key in meta) and not isinstance(meta.get(key), dict):
            raise ModelLoadError(f"model folder '{folder}': config.json key '{key}' is "
                                 f"{type(meta.get(key)).__name__}: expected an object")
    try:
        cfg = from_dict(ModelConfig, meta["model"])
        validate(cfg)
        sampling = from_dict(SamplingConfig, meta.get("sampling", {}))
    except (KeyError, ConfigError, TypeError) as e:
        raise ModelLoadError(f"model folder '{folder}': bad config.json ({e})") from None
    model = StickerModel.create(cfg, video=meta.get("stage", "video") == "video")
    model.sampling = sampling
    model.source = str(folder)
    _load_weights(model.vae, folder / "vae.safetensors")
    _load_weights(model.unet, folder / "unet.safetensors")
    if "decoder" in meta:  # optional: folders without one decode at 128 px and upscale
        try:
            model.decoder = ReferenceDecoder(from_dict(DecoderConfig, meta["decoder"]))
        except (ConfigError, ValueError, TypeError, AttributeError) as e:
            raise ModelLoadError(f"model folder '{folder}': bad config.json decoder entry ({e})") from None
        _load_weights(model.decoder, folder / "decoder.safetensors")
    return model.to(device).eval()
