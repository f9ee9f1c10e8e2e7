"""`stickers compile`: a model folder's sampling graphs as ONNX, for the torch-free fast path (issue 14).

A cold `stickers animate` spent ~6 s importing torch, diffusers (which imports torch._dynamo) and
transformers before it sampled anything. The graphs below hold everything the default sampling does
with a network, so onnx_pipeline.py runs it with onnxruntime, numpy, OpenCV and Pillow only:

    text     token ids (2, L) of [prompt, ""]        -> projected context (2, L, D)
    encode   sticker canvas (1, 4, H, W) straight     -> c_I latents (1, C, h, w)
    unet     x_t (1, C, T, h, w), t (1,), context (1, L, D), c_I (1, C, h, w), cond mask (1, T)
             -> the network's prediction (1, C, T, h, w): one evaluation of an unguided step
    decode   latents (1, C, T, h, w)                  -> straight RGBA frames (1, 4, T, H, W)
    fuse     the reference decoder's fusion net: low frames (T, 4, h, w), warped sticker (T, 4, S, S)
             and flow (T, 2, h, w) -> straight RGBA frames (T, 4, S, S), S = 256..512 (dynamic)

The solver is not re-implemented: diffusers' own scheduler, run on basis vectors, gives its per-step
arithmetic as a matrix (diffusion/sampler.solver_matrix), stored in manifest.json with the timesteps.
(A graph with the whole solver loop unrolled took 9 s to load, longer than the sampling.) The tokenizer
goes beside the graphs as tokenizer.json (the `tokenizers` library reads it); manifest.json also records
the weights' digest, the sha256 of every file it sits beside and of itself (onnx_pipeline.current_manifest
checks them before anything runs), the compiled settings and each graph's measured difference from the
torch modules on example inputs. ONNX is protobuf: nothing here is pickled.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write_text
from ..config import DEFAULT_MODEL_DIR, SamplingConfig
from ..diffusion.guidance import IP2PConditions
from ..diffusion.sampler import make_scheduler, solver_matrix
from ..errors import UserError
from ..models.checkpoint import StickerModel
from ..models.unet import make_cond_mask
from ..rgba import premultiply
from .onnx_pipeline import (
    COMPILED_DIR,
    FORMAT,
    TOKENIZER,
    compiled_settings,
    file_digest,
    manifest_digest,
    weights_digest,
)
from .params import check_params, with_overrides
from .pipeline import AnimatePipeline, clip_layout, load_stage_model

OPSET = 18
TOLERANCE = 1e-3  # max |onnxruntime - torch| / (1 + max |torch|) per graph on its example inputs


class _Text(nn.Module):
    """Token ids -> the UNet's projected context (one frozen encoder + its trainable projection)."""

    def __init__(self, encoder: nn.Module, project: nn.Module) -> None:
        super().__init__()
        self.encoder, self.project = encoder, project

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        return self.project([states])  # (N, L, D)


class _Call(nn.Module):
    """Any function of tensors as a module (for the exporter)."""

    def __init__(self, fn: Callable[..., torch.Tensor], *owners: nn.Module) -> None:
        super().__init__()
        self.fn, self.owners = fn, nn.ModuleList(owners)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


class _Fuse(nn.Module):
    """The reference decoder's per-frame fusion with its clamps: premultiplied in, straight RGBA out."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, low: torch.Tensor, warped: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return self.decoder.fuse_straight(low, warped, flow)


def _export(module: nn.Module, args: tuple, names: list[str], path: Path, side: int | None = None,
            straight_rgba: bool = False, batch: tuple[str, ...] = ()) -> float:
    """Export and check onnxruntime against torch on `args`; returns the relative difference.

    By tracing (TorchScript's exporter): the solver's Python (diffusers' step index lookups) runs on
    real values and its schedule becomes constants, which torch.export refuses as data-dependent.
    `side`: the second input's last two axes are dynamic from `side` to 4 x `side` (the fusion net, via
    torch.export: tracing cannot export its antialiased bicubic resize). `straight_rgba`: the output is
    straight RGBA on axis 1, compared premultiplied. `batch`: inputs whose first axis is dynamic (one "n"
    for all of them and the output)."""
    import onnxruntime as ort

    module.eval()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" x 4
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings: the schedule's Python numbers become constants
        expected = module(*args).float().numpy()
        if side is None:
            dynamic = {n: {0: "n"} for n in (*batch, "out")} if batch else None
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET, input_names=names,
                              output_names=["out"], dynamic_axes=dynamic)
        else:
            dim = torch.export.Dim("side", min=side, max=4 * side)
            shapes = {n: ({2: dim, 3: dim} if k == 1 else None) for k, n in enumerate(names)}
            torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=names,
                              output_names=["out"], dynamic_shapes=shapes, verbose=False).save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}  # unused inputs are dropped by the exporter
    got = session.run(None, {n: a.numpy() for n, a in zip(names, args) if n in wanted})[0]
    if straight_rgba:  # compared as seen, premultiplied: unpremultiplying by a tiny alpha magnifies float noise
        got, expected = (premultiply(np.moveaxis(x, 1, -1)) for x in (got, expected))  # (N, 4, ...) -> (N, ..., 4)
    err = float(np.abs(got - expected).max() / (1 + np.abs(expected).max()))
    if not err <= TOLERANCE:
        raise UserError(f"compile: the ONNX graph {path.name} differs from torch by {err:.2e} "
                        f"(expected at most {TOLERANCE:g}); the torch pipeline still works")
    return err


def _write_graphs(model: StickerModel, params: SamplingConfig, frames: int, cond: int, tmp: Path,
                  log: Callable[[str], None]) -> dict[str, float]:
    """Every graph, tokenizer.json and manifest.json of `model` at `params` into `tmp`; returns each graph's
    parity (relative difference from its torch module)."""
    cfg, root = model.cfg, Path(model.source)
    encoder = model.text.encoders[0]
    pipe = AnimatePipeline(model)
    torch.manual_seed(0)
    c, s, h = cfg.vae.latent_channels, cfg.resolution, cfg.latent_size
    length = encoder.spec.max_length
    tok = encoder.tokenizer(["waving hello", ""], padding="max_length", truncation=True, max_length=length,
                            return_tensors="pt")
    parity = {}

    log("compile: text encoder")
    text = _Text(encoder.model, model.unet.context_proj)
    parity["text"] = _export(text, (tok.input_ids, tok.attention_mask), ["ids", "mask"], tmp / "text.onnx")
    encoder.tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER))

    log("compile: VAE encoder")
    canvas = torch.rand(1, 4, s, s)
    parity["encode"] = _export(_Call(model.vae.encode, model.vae), (canvas,), ["canvas"], tmp / "encode.onnx")

    log(f"compile: denoiser ({params.scheduler}, {params.steps} steps, {frames} frames)")
    scheduler = make_scheduler(cfg, params.scheduler, params.steps)
    try:
        solver = solver_matrix(scheduler)
    except ValueError as e:
        raise UserError(f"compile: scheduler '{params.scheduler}': {e}; expected dpm, dpm-lu or ddim") from None
    context = text(tok.input_ids, tok.attention_mask).detach()  # (2, L, D)
    image = model.vae.encode(canvas).detach()
    noise = torch.randn(1, c, frames, h, h)
    mask = make_cond_mask(1, frames, cond)  # (1, T); unused (dropped) by a model without a mask channel
    model.unet.set_context_once(True)
    parity["unet"] = _export(model.unet, (noise, scheduler.timesteps[:1], context[:1], image, mask),
                             ["x", "t", "context", "image_latent", "cond_mask"], tmp / "unet.onnx")
    latents = pipe.sample_latents(IP2PConditions(context[:1], context[1:], image), params, noise=noise)
    nfe = pipe.stats["nfe"]

    log("compile: VAE decoder")
    parity["decode"] = _export(_Call(model.vae.decode, model.vae), (latents,), ["latents"], tmp / "decode.onnx",
                                 straight_rgba=True)

    if model.decoder is not None:
        log("compile: reference decoder")
        low = torch.rand(frames, 4, s, s)
        warped, flow = torch.rand(frames, 4, 2 * s, 2 * s), torch.randn(frames, 2, s, s)
        parity["fuse"] = _export(_Fuse(model.decoder), (low, warped, flow), ["low", "warped", "flow"],
                                 tmp / "fuse.onnx", side=s)

    manifest = {"format": FORMAT, "digest": weights_digest(root),
                "settings": compiled_settings(params, frames, cond),
                "nfe": nfe, "solver": {
                    "timesteps": [int(t) for t in scheduler.timesteps],
                    "alpha_bar": [float(scheduler.alphas_cumprod[int(t)]) for t in scheduler.timesteps],
                    "rows": solver.tolist(), "prediction_type": cfg.prediction_type,
                    "residual": cfg.video_target == "residual"},
                "canvas": s, "latent": [c, frames, h, h], "text": {"max_length": length},
                "decoder": None if model.decoder is None else {"flow_preset": model.decoder.cfg.flow_preset}}
    write_manifest(tmp, manifest, parity)
    return parity


def write_manifest(tmp: Path, manifest: dict, parity: dict[str, float]) -> None:
    """TMP/manifest.json of a compile (video or motion): `manifest` plus the graphs' parity with torch, the
    versions, the sha256 of every file written so far and the manifest's own digest."""
    manifest = {**manifest, "parity": {k: float(f"{v:.3g}") for k, v in parity.items()},
                "versions": {"torch": torch.__version__, "opset": OPSET},
                # The compiled files are part of the model's identity: a damaged one is never run.
                "files": {p.name: file_digest(p) for p in sorted(tmp.iterdir()) if p.is_file()}}
    manifest["manifest_digest"] = manifest_digest(manifest)
    atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def compile_model(folder: str | Path | None = None, log: Callable[[str], None] = print, **overrides) -> Path:
    """Write `<model folder>/onnx/` (replacing an older one atomically) for the model's sampling settings
    with `overrides` (SamplingConfig fields; None keeps the model's); returns its path."""
    model = load_stage_model(folder, "video", DEFAULT_MODEL_DIR)
    root = Path(model.source)
    cfg = model.cfg
    params = check_params(with_overrides(model.sampling, **overrides))
    frames, cond = clip_layout(cfg, params)
    if params.image_guidance != 1.0 or params.text_guidance != 1.0:
        raise UserError(f"compile: guidance {params.image_guidance}/{params.text_guidance}: expected 1/1, one "
                        "network evaluation per step (guided sampling runs on the torch engine)")
    if len(cfg.text.encoders) != 1:
        raise UserError(f"compile: model '{root}' has {len(cfg.text.encoders)} text encoders: expected 1")
    encoder = model.text.encoders[0]
    if not getattr(encoder.tokenizer, "is_fast", False):
        raise UserError(f"compile: text encoder '{encoder.spec.kind}' has no fast tokenizer (tokenizer.json)")
    return install_compile(root, lambda tmp: _write_graphs(model, params, frames, cond, tmp, log), log)


def install_compile(root: Path, write: Callable[[Path], dict[str, float]], log: Callable[[str], None]) -> Path:
    """`write(tmp)` fills a fresh folder with graphs + manifest.json and returns each graph's parity; the folder
    then replaces `root/onnx/` (an older compile stays until the new one is complete); returns its path."""
    out, tmp = root / COMPILED_DIR, root / f".{COMPILED_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        parity = write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed compile leaves nothing half-written
        raise
    old = root / f".{COMPILED_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    log(f"compile: wrote {out} (max relative difference from torch {max(parity.values()):.1e})")
    return out

