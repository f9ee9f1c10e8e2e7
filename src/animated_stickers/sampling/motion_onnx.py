"""The motion model's two engines behind one interface (issue 28): torch, and onnxruntime without torch.

MotionEngine.volumes: stills (H, W, 4) uint8 + prompts + seeds -> canvas-unit spectral volumes (4K, s, s),
what sampling/motion_model.motion_volume gives (render them with motion_model.render_frames). Everything but
the two networks is numpy and shared by both engines, so a seed gives the same motion on either:
  - the still on a transparent square at S px (rgba.fit_on_square), folded to the net's input
    (MotionNet.still_input) and the support mask that cuts the result (MotionNet.support);
  - x_T from diffusion/noise.seeded_normal (the torch engine draws it the same way);
  - DDIM, eta 0, trailing timesteps over the model's own alpha_bar (diffusers' DDIMScheduler.step, as in
    diffusion/motion.sample_spectral): the result is the last step's x0 (zero terminal SNR);
  - IP2P dual guidance (paper eq. 1-3) as one batch of 3B; guidance 1/1 is one batch of B per step.
The engines:
  OnnxMotionEngine   MOTION/onnx/{text,motion}.onnx + tokenizer.json (sampling/motion_compile.py), run by
                     onnxruntime; this module never imports torch for it.
  TorchMotionEngine  the MotionNet and its frozen text encoder (torch imported when it loads).
`load_motion_engine` picks one. The compile is part of the model's identity as on the video path
(onnx_pipeline.current_manifest: format 2, sha256 of every file and of the manifest, the weights' digest):
under "auto" a compile that must not run is one `note:` line and the torch engine, under "onnx" an error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DEFAULT_MOTION_DIR
from ..cpu import available_cores
from ..diffusion.noise import seeded_normal
from ..errors import UserError
from ..motion.spectral import MOVED_THRESHOLD, alpha_on_grid, dilate_soft, reach_px, sampled_field
from ..rgba import fit_on_square
from .onnx_pipeline import COMPILED_DIR, TOKENIZER, StaleCompile, current_manifest, load_tokenizer
from .resultcheck import check_finite

ENGINES = ("auto", "torch", "onnx")
GRAPHS = ("text", "motion")  # MOTION/onnx/<graph>.onnx
MANIFEST_KIND = "motion"  # manifest.json "kind": a motion model's compile
REBUILD = "rebuild it with `stickers compile --motion-model DIR --force`"


@dataclass(frozen=True)
class MotionSpec:
    """What sampling needs of a motion model besides its networks (MotionConfig fields + the schedule)."""

    harmonics: int
    size: int  # s: the volume's grid
    still_size: int  # S: the still's side
    scales: tuple[float, ...]
    gamma: float
    prediction_type: str
    support_dilate: int
    alphas_cumprod: np.ndarray  # (train timesteps,) float32, the schedule's alpha_bar

    @property
    def channels(self) -> int:
        return 4 * self.harmonics

    def to_json(self) -> dict:
        return {**{k: getattr(self, k) for k in ("harmonics", "size", "still_size", "gamma", "prediction_type",
                                                 "support_dilate")},
                "scales": list(self.scales), "alphas_cumprod": [float(a) for a in self.alphas_cumprod]}

    @classmethod
    def from_json(cls, d: dict) -> MotionSpec:
        return cls(int(d["harmonics"]), int(d["size"]), int(d["still_size"]), tuple(float(s) for s in d["scales"]),
                   float(d["gamma"]), str(d["prediction_type"]), int(d["support_dilate"]),
                   np.asarray(d["alphas_cumprod"], np.float32))


def spec_of(net) -> MotionSpec:
    """The MotionSpec of a MotionNet (torch): its config and the schedule diffusion/motion.py samples with."""
    from diffusers import DDIMScheduler

    from ..diffusion.schedules import scheduler_kwargs
    from ..models.motion_net import SUPPORT_DILATE

    cfg = net.cfg
    alphas = DDIMScheduler(**scheduler_kwargs(cfg)).alphas_cumprod.numpy().astype(np.float32)
    return MotionSpec(cfg.harmonics, cfg.size, cfg.still_size, tuple(cfg.scales), cfg.gamma, cfg.prediction_type,
                      SUPPORT_DILATE, alphas)


# ---------------------------------------------------------------------------------- the still, in numpy


def square_stills(stills: Sequence[np.ndarray], side: int) -> np.ndarray:
    """Straight RGBA stills (H, W, 4) uint8 -> (B, 4, S, S) float32 straight in [0, 1], each centred on a
    transparent square (as motion_model.motion_volume)."""
    squares = [np.asarray(fit_on_square(Image.fromarray(s, "RGBA"), side)[0], np.float32) / 255 for s in stills]
    return np.stack(squares).transpose(0, 3, 1, 2)  # (B, S, S, 4) -> (B, 4, S, S)


def pixel_unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    """torch's pixel_unshuffle: (B, C, H, W) -> (B, C r², H/r, W/r), channel c r² + i r + j from pixel (i, j)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // r, r, w // r, r)  # (B, C, h, i, w, j)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(b, c * r * r, h // r, w // r)  # (B, C, i, j, h, w) -> ...


def still_input(still: np.ndarray, size: int) -> np.ndarray:
    """MotionNet.still_input: (B, 4, S, S) straight -> premultiplied in [-1, 1] folded to (B, 4 f², s, s)."""
    pm = still.copy()
    pm[:, :3] *= still[:, 3:4]
    return pixel_unshuffle(pm * 2 - 1, still.shape[-1] // size)


def support_mask(still: np.ndarray, size: int, dilate: int) -> np.ndarray:
    """MotionNet.support in numpy: (B, 4, S, S) straight -> (B, 1, s, s): alpha averaged onto the field's grid,
    > spectral.MOVED_THRESHOLD, dilated by `dilate` px and softened (spectral.dilate_soft)."""
    grid = alpha_on_grid(still[:, 3], size)  # (B, S, S) -> (B, s, s)
    return np.stack([dilate_soft(a > MOVED_THRESHOLD, dilate) for a in grid])[:, None]


# ---------------------------------------------------------------------------------- the sampler, in numpy


def trailing_timesteps(train_steps: int, steps: int) -> np.ndarray:
    """diffusers' "trailing" spacing: `steps` timesteps from train_steps - 1 down (zero SNR's pure noise first)."""
    return np.round(np.arange(train_steps, 0, -train_steps / steps)).astype(np.int64) - 1


def ddim_x0(predict: Callable[[np.ndarray, int], np.ndarray], x: np.ndarray, alphas_cumprod: np.ndarray,
            steps: int, prediction_type: str) -> np.ndarray:
    """DDIM (eta 0, no clipping, set_alpha_to_one False) from x_T (B, C, s, s); returns the last x0 prediction.
    `predict(x_t, t)`: the (guided) network output, eps, v or x0 ("sample")."""
    n = len(alphas_cumprod)
    x0 = x
    for t in trailing_timesteps(n, steps):
        pred = predict(x, int(t))
        prev = t - n // steps
        a, a_prev = alphas_cumprod[t], alphas_cumprod[prev] if prev >= 0 else alphas_cumprod[0]
        sa, sb = np.sqrt(a), np.sqrt(np.float32(1) - a)
        if prediction_type == "v_prediction":
            x0, eps = sa * x - sb * pred, sa * pred + sb * x
        elif prediction_type == "sample":
            x0, eps = pred, (x - sa * pred) / sb
        else:
            x0, eps = (x - sb * pred) / sa, pred
        x = np.sqrt(a_prev) * x0 + np.sqrt(np.float32(1) - a_prev) * eps
    return x0


# ---------------------------------------------------------------------------------- the interface


class MotionEngine:
    """stills + prompts + seeds -> spectral volumes; subclasses give the two networks (see the module doc)."""

    name = "abstract"

    def __init__(self, spec: MotionSpec, source: str) -> None:
        self.spec, self.source = spec, source
        self.stats: dict[str, float] = {}
        self._null: np.ndarray | None = None  # the "" states (1, L, D): the same for every call

    def text_states(self, prompts: list[str]) -> np.ndarray:
        """prompts -> the frozen encoder's last hidden states (N, L, D) float32; "" is the null text."""
        raise NotImplementedError

    def network(self, x: np.ndarray, t: np.ndarray, still: np.ndarray, text: np.ndarray) -> np.ndarray:
        """MotionNet.forward: x_t (N, 4K, s, s), t (N,) int64, folded still (N, 4f², s, s), text (N, L, D)."""
        raise NotImplementedError

    def volumes(self, stills: Sequence[np.ndarray], prompts: Sequence[str], seeds: Sequence[int], steps: int = 20,
                image_guidance: float = 1.0, text_guidance: float = 1.0, noise: np.ndarray | None = None
                ) -> list[np.ndarray]:
        """Per still (H, W, 4) uint8, its spectral volume (4K, s, s) float32 in canvas units of the still's square,
        all stills in one batch. `noise`: x_T (B, 4K, s, s) instead of seeded_normal(seeds)."""
        spec, b = self.spec, len(stills)
        if not (1 <= b == len(prompts) == len(seeds)) or steps < 1:
            raise UserError(f"motion engine: {b} stills, {len(prompts)} prompts, {len(seeds)} seeds, {steps} steps: "
                            "expected one prompt and seed per still and steps >= 1")
        self.stats = {"text_s": 0.0, "network_s": 0.0, "nfe": 0.0}
        small = square_stills(stills, spec.still_size)  # (B, 4, S, S)
        cond = still_input(small, spec.size)  # (B, 4f², s, s)
        t0 = time.perf_counter()
        if self._null is None:
            self._null = self.text_states([""])
        text, null = self.text_states(list(prompts)), np.repeat(self._null, b, axis=0)  # (B, L, D) each
        self.stats["text_s"] = time.perf_counter() - t0
        guided = not (image_guidance == 1.0 and text_guidance == 1.0)
        if guided:  # branches (no image, no text), (image, no text), (image, text) in one batch of 3B
            still3, text3 = np.concatenate([np.zeros_like(cond), cond, cond]), np.concatenate([null, null, text])
        s_i, s_t = np.float32(image_guidance), np.float32(text_guidance)

        def predict(x: np.ndarray, t: int) -> np.ndarray:
            t0 = time.perf_counter()
            if guided:
                u, i, f = np.split(self.network(np.concatenate([x, x, x]), np.full(3 * b, t, np.int64), still3, text3),
                                   3)
                out = u + s_i * (i - u) + s_t * (f - i)  # eq. 1-3, as diffusion/guidance.ip2p_combine
            else:
                out = self.network(x, np.full(b, t, np.int64), cond, text)
            self.stats["network_s"] += time.perf_counter() - t0
            self.stats["nfe"] += 3.0 if guided else 1.0
            return out

        x = seeded_normal((b, spec.channels, spec.size, spec.size), list(seeds)) if noise is None \
            else np.asarray(noise, np.float32)
        z = ddim_x0(predict, x, spec.alphas_cumprod, steps, spec.prediction_type)
        z = z * support_mask(small, spec.size, reach_px(spec.size))  # (B, 1, s, s): no flow far out on empty canvas
        check_finite(z, "motion field", f"motion model '{self.source}' ({self.name} engine)")
        return [sampled_field(v, alpha, spec.scales, spec.gamma, spec.support_dilate)
                for v, alpha in zip(z, alpha_on_grid(small[:, 3], spec.size))]  # alpha (s, s) on the field's grid


class OnnxMotionEngine(MotionEngine):
    """The compiled graphs (sampling/motion_compile.py) run by onnxruntime; no torch."""

    name = "onnx"

    def __init__(self, folder: Path, manifest: dict, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(MotionSpec.from_json(manifest["motion"]), str(folder))
        self.folder = folder
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or available_cores()  # onnxruntime counts the machine's cores
        opts.inter_op_num_threads = 1
        self.sessions = {g: self._session(ort, g, opts) for g in GRAPHS}
        self.inputs = {g: {i.name for i in s.get_inputs()} for g, s in self.sessions.items()}  # unused ones dropped
        self.tokenizer = load_tokenizer(folder / COMPILED_DIR / TOKENIZER, int(manifest["text"]["max_length"]))
        x = next((i for i in self.sessions["motion"].get_inputs() if i.name == "x"), None)
        want = [self.spec.channels, self.spec.size, self.spec.size]
        if x is None or list(x.shape[1:]) != want:
            raise StaleCompile(f"'{self._path('motion')}' takes x of shape {None if x is None else x.shape}: "
                               f"manifest.json expects (N, {', '.join(map(str, want))})")

    @classmethod
    def load(cls, folder: Path, threads: int | None = None) -> OnnxMotionEngine | None:
        """The engine of a motion folder's current compile; None without one; StaleCompile naming the file of
        one that must not run."""
        manifest = motion_manifest(folder)
        return None if manifest is None else cls(folder, manifest, threads)

    def _path(self, graph: str) -> Path:
        return self.folder / COMPILED_DIR / f"{graph}.onnx"

    def _session(self, ort, graph: str, opts):
        try:
            return ort.InferenceSession(str(self._path(graph)), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own error types derive from Exception
            raise StaleCompile(f"'{self._path(graph)}' cannot be loaded by onnxruntime ({type(e).__name__})") from None

    def _run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        try:
            out = self.sessions[graph].run(None, {k: v for k, v in inputs.items() if k in self.inputs[graph]})[0]
        except Exception as e:  # InvalidArgument, Fail, ...
            raise StaleCompile(f"'{self._path(graph)}' failed to run ({type(e).__name__}: "
                               f"{str(e).splitlines()[0][:200]}): {REBUILD}") from None
        return check_finite(out, "values", f"compiled graph '{self._path(graph)}'", REBUILD)

    def text_states(self, prompts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(prompts)
        ids = np.array([e.ids for e in enc], np.int64)  # (N, L)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        return self._run("text", ids=ids, mask=mask)

    def network(self, x: np.ndarray, t: np.ndarray, still: np.ndarray, text: np.ndarray) -> np.ndarray:
        return self._run("motion", x=np.ascontiguousarray(x, np.float32), t=t, still=np.ascontiguousarray(still),
                         text=np.ascontiguousarray(text))


class TorchMotionEngine(MotionEngine):
    """The MotionNet and its frozen text encoder, on torch's threads (optimize.set_threads)."""

    name = "torch"

    def __init__(self, net, text, source: str = "in memory") -> None:
        super().__init__(spec_of(net), source)
        self.net, self.text = net.eval(), text

    @classmethod
    def load(cls, folder: Path) -> TorchMotionEngine:
        """load_motion_model's checks (config, tensor names, shapes, finite weights: one MotionModelError line),
        and the text encoder's width against the net's."""
        from ..models.motion_net import MotionModelError, load_motion_model
        from ..models.text import encoder_dim, load_text_encoders

        net = load_motion_model(folder)
        dim = encoder_dim(net.cfg.text)
        if dim != net.cfg.text_dim:
            raise MotionModelError(f"motion model '{folder}': text_dim={net.cfg.text_dim}, but its text encoder "
                                   f"'{net.cfg.text.kind}' gives {dim}")
        return cls(net, load_text_encoders([net.cfg.text]), str(folder))

    def text_states(self, prompts: list[str]) -> np.ndarray:
        return self.text(prompts)[0].float().numpy()

    def network(self, x: np.ndarray, t: np.ndarray, still: np.ndarray, text: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.net(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (x, t, still, text))).numpy()


# ---------------------------------------------------------------------------------- choosing one


def motion_manifest(folder: Path) -> dict | None:
    """A motion folder's compile manifest when it and every file check out (onnx_pipeline.current_manifest);
    None without a compile; StaleCompile naming what does not check out."""
    manifest = current_manifest(Path(folder), GRAPHS)
    if manifest is not None and manifest.get("kind") != MANIFEST_KIND:
        raise StaleCompile(f"'{Path(folder) / COMPILED_DIR / 'manifest.json'}' is not a motion model's compile")
    return manifest


def compile_command(folder: Path | None) -> str:
    return f"stickers compile --motion-model {folder or DEFAULT_MOTION_DIR}"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def load_motion_engine(folder: str | Path | None = None, engine: str = "auto", threads: int | None = None,
                       notice: Callable[[str], None] = _stderr) -> MotionEngine:
    """The engine of a motion model folder (None: weights/motion). "onnx": its current compile, else one error
    line; "torch": the MotionNet; "auto": the compile when there is a current one, else torch (after one
    `note:` line through `notice` when a compile exists but must not run)."""
    if engine not in ENGINES:
        raise UserError(f"--engine '{engine}': expected one of {', '.join(ENGINES)}")
    root = Path(folder) if folder is not None else DEFAULT_MOTION_DIR
    if not root.is_dir():
        raise UserError(f"motion model '{root}' does not exist: expected a folder with config.json and "
                        "motion.safetensors (stickers train --recipe motion-tiny), or --path video")
    if engine != "torch":
        try:
            fast = OnnxMotionEngine.load(root, threads)
        except StaleCompile as e:
            if engine == "onnx":
                raise StaleCompile(f"--engine onnx: {e}: run `{compile_command(folder)} --force`") from None
            notice(f"note: {e}: using the torch engine (run `{compile_command(folder)} --force` to rebuild it)")
            fast = None
        if fast is not None:
            return fast
        if engine == "onnx":
            raise UserError(f"--engine onnx: motion model '{root}' has no compile: run `{compile_command(folder)}`")
    return TorchMotionEngine.load(root)
