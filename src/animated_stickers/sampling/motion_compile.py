"""`stickers compile --motion-model DIR`: the motion model's networks as ONNX (issue 28), for the torch-free
engine (motion_onnx.OnnxMotionEngine). The same conventions as the video model's compile (onnx_export.py):

    text     token ids, mask (N, L)                              -> MiniLM's last hidden states (N, L, D)
    motion   x_t (N, 4K, s, s), t (N,), folded still (N, 4f², s, s), text (N, L, D) -> eps or v (N, 4K, s, s)
             (MotionNet.forward; N is dynamic: B unguided, 3B with dual guidance)

into MOTION/onnx/ with tokenizer.json and a format-2 manifest.json: the weights' digest, the sha256 of every
file and of itself, the sampler's numbers (motion_onnx.MotionSpec: the schedule's alpha_bar, the target's
scales) and each graph's measured difference from torch. Any step count and guidance run on it: the DDIM loop
and the guidance are numpy (motion_onnx.py), not graphs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..config import DEFAULT_MOTION_DIR
from ..errors import UserError
from ..models.motion_net import MotionNet, load_motion_model
from ..models.text import load_text_encoders
from .motion_onnx import MANIFEST_KIND, motion_manifest, spec_of
from .onnx_export import _Call, _export, install_compile, write_manifest
from .onnx_pipeline import FORMAT, TOKENIZER, StaleCompile, weights_digest


def _write_graphs(net: MotionNet, root: Path, tmp: Path, log: Callable[[str], None]) -> dict[str, float]:
    """text.onnx, motion.onnx, tokenizer.json and manifest.json of `net` (from folder `root`) into `tmp`; returns
    each graph's parity."""
    cfg = net.cfg
    encoder = load_text_encoders([cfg.text]).encoders[0]
    if not getattr(encoder.tokenizer, "is_fast", False):
        raise UserError(f"compile: text encoder '{cfg.text.kind}' has no fast tokenizer (tokenizer.json)")
    length = cfg.text.max_length
    tok = encoder.tokenizer(["waving hello", "", "a rabbit tilting its head"], padding="max_length",
                            truncation=True, max_length=length, return_tensors="pt")
    parity = {}

    log("compile: motion text encoder")
    text = _Call(lambda ids, mask: encoder.model(input_ids=ids, attention_mask=mask).last_hidden_state.float(),
                 encoder.model)
    parity["text"] = _export(text, (tok.input_ids, tok.attention_mask), ["ids", "mask"], tmp / "text.onnx",
                             batch=("ids", "mask"))
    encoder.tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER))

    log("compile: motion network")
    gen = torch.Generator().manual_seed(0)
    n = 3  # the guided batch; the batch axis is dynamic
    x = torch.randn(n, cfg.channels, cfg.size, cfg.size, generator=gen)
    still = net.still_input(torch.rand(n, 4, cfg.still_size, cfg.still_size, generator=gen))
    states = text(tok.input_ids, tok.attention_mask).detach()  # (3, L, D)
    parity["motion"] = _export(net, (x, torch.tensor([999, 500, 20]), still, states), ["x", "t", "still", "text"],
                               tmp / "motion.onnx", batch=("x", "t", "still", "text"))

    write_manifest(tmp, {"format": FORMAT, "kind": MANIFEST_KIND, "digest": weights_digest(root),
                         "motion": spec_of(net).to_json(), "text": {"max_length": length, "dim": cfg.text_dim}},
                   parity)
    return parity


def compile_motion_model(folder: str | Path | None = None, log: Callable[[str], None] = print, force: bool = False
                         ) -> Path:
    """Write `<motion folder>/onnx/` (None: weights/motion), replacing an older compile atomically; a current
    one is kept unless `force`. The folder is checked first (load_motion_model: one MotionModelError line for a
    missing, wrong-shape or non-finite tensor)."""
    root = Path(folder) if folder is not None else DEFAULT_MOTION_DIR
    net = load_motion_model(root)
    if not force:
        try:
            current = motion_manifest(root)
        except StaleCompile:
            current = None
        if current is not None:
            log(f"{root / 'onnx'} is current (use --force to compile again)")
            return root / "onnx"
    return install_compile(root, lambda tmp: _write_graphs(net, root, tmp, log), log)
