"""The torch-free fast path: a compiled model folder (onnx_export.py) run with onnxruntime (issue 14).

Same steps and helpers as AnimatePipeline (pipeline.py), one sticker at a time: prepare the sticker
(preprocess.py), references and placements for the whole batch (refdecode.py), seeded x_T
(diffusion/noise.py), then the graphs text -> encode -> unet (once per step) -> decode -> fuse, with
the solver's recorded arithmetic (diffusion/sampler.solver_matrix), the anchor (diffusion/anchor.py),
the reference decoder's flow and warp (flow.py) and the prompt's motion (promptmotion.py) in numpy.
Nothing here imports torch, diffusers or transformers: a cold `stickers animate` pays for numpy,
onnxruntime, OpenCV and Pillow only.

It serves exactly the settings it was compiled for (manifest.json: scheduler, steps, guidance, frames,
conditioning frame, float32); the seed, `prompt_motion`, `room` and `paste_input` are free. Anything else, a
stale compile (the weights' digest differs) or a missing one falls back to the torch pipeline.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DEFAULT_MODEL_DIR, ConfigError, SamplingConfig, from_dict
from ..cpu import available_cores
from ..diffusion.anchor import output_for_x0
from ..diffusion.noise import seeded_normal
from ..errors import UserError
from ..flow import DEFAULT_PRESET, flows_to_frame, move_sticker, warp_along
from ..rgba import array_to_images, images_to_array, premultiply, restore_from_square
from .params import check_params, clip_layout, prompts_per_sticker
from .preprocess import Sticker
from .promptmotion import makes_room, move_by_prompt
from .refdecode import references

COMPILED_DIR = "onnx"  # <model folder>/onnx/
FORMAT = 1  # manifest format; a compile of another format is ignored
SETTINGS = ("scheduler", "steps", "image_guidance", "text_guidance", "guided_steps", "dtype", "anchor")
GRAPHS = ("text", "encode", "unet", "decode")  # + "fuse" with a reference decoder
# Seconds per graph under AnimatePipeline's names (benchmarks compare both); decode and fuse are timed
# together with the flow and warp as vae_decode_s.
STAT_KEYS = {"text": "text_encode_s", "encode": "vae_encode_s", "unet": "unet_s", "decode": "decode_only_s",
             "fuse": "fuse_only_s"}
Progress = Callable[[int, int], None]


def _combine(row: np.ndarray, basis: list[np.ndarray]) -> np.ndarray:
    """sum_j row[j] * basis[j] over the basis so far (later coefficients are zero), float32."""
    out = np.zeros_like(basis[0])
    for c, b in zip(row, basis):
        if c:
            out += np.float32(c) * b
    return out


def weights_digest(folder: Path) -> str:
    """sha256 over config.json and every *.safetensors of a model folder (names and bytes)."""
    h = hashlib.sha256()
    for path in sorted([folder / "config.json", *folder.glob("*.safetensors")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def compiled_settings(params: SamplingConfig, frames: int, cond: int) -> dict:
    """What the compiled graphs bake in: the solver, guidance and clip layout of `params`."""
    return {**{k: getattr(params, k) for k in SETTINGS}, "num_frames": frames, "cond_frame": cond}


def read_manifest(folder: Path) -> dict | None:
    """The compile's manifest if it is present, of this format and made from these exact weights."""
    try:
        manifest = json.loads((folder / COMPILED_DIR / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    return manifest if manifest.get("digest") == weights_digest(folder) else None


class OnnxPipeline:
    """animate_stickers() like AnimatePipeline's, on a compiled model folder; see the module docstring."""

    def __init__(self, folder: Path, manifest: dict, sampling: SamplingConfig, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.folder, self.manifest, self.sampling = folder, manifest, sampling
        opts = ort.SessionOptions()
        # onnxruntime's own default counts the machine's cores, not the ones this process may use.
        opts.intra_op_num_threads = threads or available_cores()
        opts.inter_op_num_threads = 1
        names = GRAPHS + (("fuse",) if manifest.get("decoder") else ())
        self.sessions = {n: ort.InferenceSession(str(folder / COMPILED_DIR / f"{n}.onnx"), opts,
                                                 providers=["CPUExecutionProvider"]) for n in names}
        # The exporter drops inputs a graph does not use: feed each graph only its own.
        self.inputs = {n: {i.name for i in s.get_inputs()} for n, s in self.sessions.items()}
        self.tokenizer = self._tokenizer(int(manifest["text"]["max_length"]))
        self.stats: dict[str, float] = {}

    @classmethod
    def open(cls, folder: str | Path | None = None, threads: int | None = None) -> OnnxPipeline | None:
        """The compiled pipeline of a model folder (None: weights/tiny), or None when it has no current
        compile (missing, another format, or older than its weights)."""
        root = Path(folder) if folder else DEFAULT_MODEL_DIR
        manifest = read_manifest(root) if (root / "config.json").is_file() else None
        if manifest is None:
            return None
        meta = json.loads((root / "config.json").read_text())
        try:
            sampling = from_dict(SamplingConfig, meta.get("sampling", {}))
        except (ConfigError, TypeError):
            return None  # the torch pipeline reports a bad config.json with its own error
        return cls(root, manifest, sampling, threads)

    def _tokenizer(self, length: int):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.folder / COMPILED_DIR / "tokenizer.json"))
        tok.enable_truncation(length)
        pad = tok.padding or {}
        tok.enable_padding(length=length, pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
        return tok

    # ------------------------------------------------------------------ settings
    @property
    def resolution(self) -> int:
        return int(self.manifest["canvas"])

    def layout(self, params: SamplingConfig) -> tuple[int, int]:
        """(frames, conditioning index) of a call, by the compiled defaults."""
        return clip_layout(params, self.manifest["settings"]["num_frames"], self.manifest["settings"]["cond_frame"])

    def supports(self, params: SamplingConfig) -> bool:
        """Whether these settings are the compiled ones (else use the torch pipeline)."""
        return compiled_settings(params, *self.layout(params)) == self.manifest["settings"]

    # ------------------------------------------------------------------ public
    def animate_stickers(self, stickers: list[Sticker], prompts: list[str], params: SamplingConfig | None = None,
                         progress: Progress | None = None) -> list[list[Image.Image]]:
        """Per sticker, `frames` RGBA frames at the input's own size (as AnimatePipeline.animate_stickers)."""
        prompts = prompts_per_sticker(prompts, len(stickers))
        params = check_params(params or self.sampling)
        if not self.supports(params):
            raise UserError(f"model '{self.folder}' was compiled for {self.manifest['settings']}: "
                            "expected those settings (the torch pipeline takes any)")
        _, cond = self.layout(params)
        reference, placements = references(self.manifest.get("decoder") is not None, params.render, stickers,
                                           self.resolution)
        self.stats = {"nfe": 0.0}
        out = []
        steps = len(self.manifest["solver"]["timesteps"])
        for i, (sticker, prompt, placement) in enumerate(zip(stickers, prompts, placements)):

            def step_done(k: int, i: int = i) -> None:  # the bar over all stickers
                if progress is not None:
                    progress(params.steps * (i * steps + k) // (len(stickers) * steps), params.steps)

            video = self._video(sticker, prompt, params.seed + i, cond, None if reference is None else reference[i],
                                params, step_done)
            if params.prompt_motion:
                moved = move_by_prompt(video, prompt, cond, makes_room(params))
                video = video if moved is None else moved
            seq = [restore_from_square(f, placement) for f in array_to_images(video)]
            if params.paste_input:
                seq[cond] = sticker.rgba.copy()
            out.append(seq)
        return out

    # ------------------------------------------------------------------ steps
    def _run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.sessions[graph].run(None, {k: v for k, v in inputs.items() if k in self.inputs[graph]})[0]
        key = STAT_KEYS.get(graph, f"{graph}_s")
        self.stats[key] = self.stats.get(key, 0.0) + time.perf_counter() - t0
        return out

    def _denoise(self, noise: np.ndarray, context: np.ndarray, image_latent: np.ndarray, cond: int, anchor: bool,
                 progress: Callable[[int], None]) -> np.ndarray:
        """x_T (1, C, T, h, w) -> clean latents: x_i = rows[i] . [x_T, out_0, ..., out_{i-1}], as
        AnimatePipeline.sample_latents (unguided: one evaluation per step)."""
        solver = self.manifest["solver"]
        rows = np.asarray(solver["rows"], np.float64)  # (K + 1, K + 1)
        residual = solver["residual"]
        clean = np.zeros_like(image_latent) if residual else image_latent  # the anchored frame's x0
        mask = (np.arange(noise.shape[2]) == cond).astype(np.float32)[None]  # (1, T), as make_cond_mask
        basis = [noise]
        for i, t in enumerate(solver["timesteps"]):
            x = _combine(rows[i], basis)
            out = self._run("unet", x=x, t=np.array([t], np.int64), context=context[:1], image_latent=image_latent,
                            cond_mask=mask)
            if anchor:
                ab = np.float32(solver["alpha_bar"][i])
                out[:, :, cond] = output_for_x0(x[:, :, cond], clean, ab, solver["prediction_type"])
            basis.append(out)
            progress(i + 1)
        latents = _combine(rows[-1], basis)
        return latents + image_latent[:, :, None] if residual else latents

    def _video(self, sticker: Sticker, prompt: str, seed: int, cond: int, reference: np.ndarray | None,
               params: SamplingConfig, progress: Callable[[int], None]) -> np.ndarray:
        """One sticker -> straight RGBA frames (T, S, S, 4) in [0, 1] before the prompt's motion."""
        canvas = images_to_array([sticker.canvas]).transpose(0, 3, 1, 2)  # (1, H, W, 4) -> (1, 4, H, W)
        image_latent = self._run("encode", canvas=canvas)  # (1, C, h, w)
        enc = self.tokenizer.encode_batch([prompt, ""])
        ids = np.array([e.ids for e in enc], np.int64)  # (2, L)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        context = self._run("text", ids=ids, mask=mask)  # (2, L, D): prompt, null
        noise = seeded_normal((1, *self.manifest["latent"]), [seed])  # (1, C, T, h, w)
        latents = self._denoise(noise, context, image_latent, cond, params.anchor, progress)
        self.stats["nfe"] = float(self.manifest["nfe"])
        if not np.isfinite(latents).all():
            raise UserError(f"model '{self.folder}' sampled NaN or infinite latents: its weights are broken; "
                            "expected a model folder trained by `stickers train`")
        t0 = time.perf_counter()
        video = self._decode(latents, cond, reference, params)
        # The whole decode (VAE, flow, warp, fusion), as AnimatePipeline's vae_decode_s.
        self.stats["vae_decode_s"] = self.stats.get("vae_decode_s", 0.0) + time.perf_counter() - t0
        return video

    def _decode(self, latents: np.ndarray, cond: int, reference: np.ndarray | None, params: SamplingConfig
                ) -> np.ndarray:
        """Latents (1, C, T, h, w) -> straight RGBA frames (T, S, S, 4), as models/decoder.decode_warp
        (render "warp") or ReferenceDecoder.decode (render "fuse")."""
        frames = self._run("decode", latents=latents)[0].transpose(1, 2, 3, 0)  # (4, T, h, w) -> (T, h, w, 4)
        if reference is None:
            return frames
        low = premultiply(frames)  # (T, h, w, 4), as models/decoder.decode_low
        decoder = self.manifest.get("decoder")
        flows = flows_to_frame(low, cond, decoder["flow_preset"] if decoder else DEFAULT_PRESET)  # (T, h, w, 2)
        if params.render == "warp":
            return move_sticker(reference, flows, cond, params.harmonics)  # (T, S, S, 4)
        warped = warp_along(premultiply(reference), flows)  # (T, S, S, 4)
        fused = self._run("fuse", low=low.transpose(0, 3, 1, 2), warped=warped.transpose(0, 3, 1, 2),
                          flow=flows.transpose(0, 3, 1, 2))  # (T, 4, S, S)
        return fused.transpose(0, 2, 3, 1)  # -> (T, S, S, 4)
