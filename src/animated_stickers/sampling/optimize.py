"""Training-free speed-ups (paper 3.3.1), each switchable and measured by `stickers bench`.

- bf16: autocast to bfloat16 for the UNet and VAE decode (the scheduler math stays float32).
- jit: TorchScript trace + `torch.jit.freeze(optimize_numerics=False)` (the paper's "preserve the
  numerics" flag). A trace is specialised to its input shapes (and the frame count), so one is built
  per shape; each is checked against eager on its example inputs and dropped (eager fallback) if it
  fails to trace or disagrees beyond a tolerance. A trace taken under autocast bakes the casts in.
- compile: torch.compile (works on CPU but the first call costs ~150 s; off by default).
- channels_last: NHWC weights for the 2D convs.
- context_once: text K/V projected once per video, not once per frame (models/temporal.py).
- threads: torch intra-op threads (default: every core this process may use).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings
from dataclasses import dataclass, field

import torch

from ..cpu import available_cores
from ..models.unet import StickerUNet

log = logging.getLogger(__name__)

JIT_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2}  # max |trace - eager| / (1 + max |eager|)


@dataclass
class SpeedOptions:
    """Which speed-ups the pipeline uses; precision (bf16) comes from SamplingConfig.dtype."""

    jit: bool = False
    compile: bool = False
    channels_last: bool = False
    # Kept on: measured on weights/tiny (1 thread, shared core, 2026-12-01, paired A/B of 7-11 forwards),
    # whole-UNet speed-up 0.97x / 1.04x / 1.04x at 1 video (the unguided and distilled shape) and
    # 1.03x / 1.00x at 3 videos; the cross-attention layers alone 1.21x. Not slower than 1.0x beyond the
    # +-4% noise, so not switched off (issue 14's 0.89x did not reproduce). Re-check with `stickers bench`.
    context_once: bool = True
    threads: int | None = None  # None: leave torch's setting alone


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (default: all available cores); returns the number set."""
    n = n or available_cores()
    torch.set_num_threads(n)
    return n


def autocast(dtype: torch.dtype):
    """CPU/GPU autocast context for bf16, a no-op for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.autocast(device, dtype=dtype)


def to_channels_last(module: torch.nn.Module) -> None:
    """Store every 4-D conv weight NHWC (Conv3d temporal weights are left as they are)."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)


@dataclass
class FastUNet:
    """A `Denoiser` around StickerUNet: (x, t, context, image_latent) -> float32 prediction."""

    unet: StickerUNet
    speed: SpeedOptions = field(default_factory=SpeedOptions)
    dtype: torch.dtype = torch.float32
    status: dict[str, str] = field(default_factory=dict)  # what each speed-up actually did
    calls: list[tuple[int, float]] = field(default_factory=list)  # (batch, seconds) per call, for benchmarks

    def __post_init__(self) -> None:
        if self.speed.channels_last:  # a private NHWC copy: the model may be shared with other pipelines
            self.unet = copy.deepcopy(self.unet)
            to_channels_last(self.unet)
        self.unet.eval().requires_grad_(False)  # also required to trace under autocast
        self._traces: dict[tuple, torch.jit.ScriptModule | None] = {}
        self._compiled = torch.compile(self.unet) if self.speed.compile else None

    def __call__(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                 image_latent: torch.Tensor | None, cond_mask: torch.Tensor | None = None,
                 guidance: torch.Tensor | None = None) -> torch.Tensor:
        args = (x, t, context) if image_latent is None else (x, t, context, image_latent)
        if cond_mask is not None or guidance is not None:
            args = args + (cond_mask,)
        if guidance is not None:  # (B, 2) scales of a guidance-embedded student
            args = args + (guidance,)
        if self.unet.context_once != self.speed.context_once:  # the UNet may be shared: set it per call
            self.unet.set_context_once(self.speed.context_once)
        traced = self._trace_for(args) if self.speed.jit else None  # built (once per shape) outside the timing
        t0 = time.perf_counter()
        with torch.no_grad():
            if traced is not None:
                out = traced(*args).float()  # casts are inside the trace
            else:
                with autocast(self.dtype):
                    out = (self._compiled or self.unet)(*args).float()
        self.calls.append((x.shape[0], time.perf_counter() - t0))
        return out

    def _trace_for(self, args: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule | None:
        key = (self.dtype, self.unet.context_once) + tuple((tuple(a.shape), a.dtype) for a in args)
        if key not in self._traces:
            with torch.no_grad():
                self._traces[key] = self._build_trace(args)
        return self._traces[key]

    def _build_trace(self, args: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule | None:
        shapes = "x".join(map(str, args[0].shape))
        try:
            with warnings.catch_warnings(), autocast(self.dtype):
                warnings.simplefilter("ignore")  # TracerWarnings about python ints baked into the graph
                traced = torch.jit.trace(self.unet, args, check_trace=False)
                expected = self.unet(*args).float()
            frozen = torch.jit.freeze(traced.eval(), optimize_numerics=False)
            frozen(*args)  # the profiling executor optimises the graph over its first two runs
            got = frozen(*args).float()
        except Exception as e:  # noqa: BLE001 (any tracing failure: keep the eager model working)
            self.status[f"jit {shapes}"] = f"eager fallback (trace failed: {type(e).__name__})"
            log.warning("TorchScript trace failed for %s, using eager: %s", shapes, e)
            return None
        err = ((got - expected).abs().max() / (1 + expected.abs().max())).item()
        if not err <= JIT_TOLERANCE[self.dtype]:
            self.status[f"jit {shapes}"] = f"eager fallback (trace differs by {err:.2e})"
            log.warning("TorchScript trace of %s differs from eager by %.2e, using eager", shapes, err)
            return None
        self.status[f"jit {shapes}"] = f"frozen trace (rel. diff {err:.1e})"
        return frozen
