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

from ..config import ConfigError, ModelConfig, SamplingConfig, from_dict, to_dict
from .text import TextEncoders, load_text_encoders
from .unet import StickerUNet
from .vae import RGBAVAE

FORMAT_VERSION = 1
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "weights" / "tiny"


class ModelLoadError(RuntimeError):
    """A model folder that cannot be loaded; the message names the folder and the problem."""


@dataclass
class StickerModel:
    """VAE + UNet (+ lazily loaded frozen text encoders) and the recommended sampling settings."""

    cfg: ModelConfig
    vae: RGBAVAE
    unet: StickerUNet
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    _text: TextEncoders | None = None

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
        return self

    def eval(self) -> StickerModel:
        self.vae.eval()
        self.unet.eval()
        return self


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, dtype: torch.dtype | None) -> None:
    tensors = {k: (v.to(dtype) if dtype and v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)


def save_model(model: StickerModel, folder: str | Path, dtype: torch.dtype | None = None,
               extra: dict | None = None) -> Path:
    """Write the model folder; `dtype=torch.float16` halves the files (the shipped default)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save(model.vae.state_dict(), folder / "vae.safetensors", dtype)
    _atomic_save(model.unet.state_dict(), folder / "unet.safetensors", dtype)
    meta = {"format_version": FORMAT_VERSION, "stage": model.stage, "model": to_dict(model.cfg),
            "sampling": to_dict(model.sampling), **(extra or {})}
    tmp = folder / "config.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(folder / "config.json")
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
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"model folder '{folder}': config.json is not valid JSON ({e.msg})") from None


def _load_weights(module: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ModelLoadError(f"model folder '{path.parent}' is missing {path.name}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"weights file '{path}' is corrupted or not safetensors ({e})") from None
    ref = module.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref else v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelLoadError(f"weights file '{path}' does not match config.json ({first})") from None


def load_model(folder: str | Path | None = None, device: str = "cpu") -> StickerModel:
    """Load a model folder (default: the bundled `weights/tiny`) in fp32, eval mode."""
    folder = Path(folder) if folder else DEFAULT_MODEL_DIR
    meta = read_config(folder)
    try:
        cfg = from_dict(ModelConfig, meta["model"])
        sampling = from_dict(SamplingConfig, meta.get("sampling", {}))
    except (KeyError, ConfigError) as e:
        raise ModelLoadError(f"model folder '{folder}': bad config.json ({e})") from None
    model = StickerModel.create(cfg, video=meta.get("stage", "video") == "video")
    model.sampling = sampling
    _load_weights(model.vae, folder / "vae.safetensors")
    _load_weights(model.unet, folder / "unet.safetensors")
    return model.to(device).eval()
