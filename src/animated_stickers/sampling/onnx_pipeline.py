"""The torch-free fast path: a compiled model folder (onnx_export.py) run with onnxruntime (issue 14).

Same steps and helpers as AnimatePipeline (pipeline.py), one sticker at a time: prepare the sticker
(preprocess.py), references and placements for the whole batch (refdecode.py), seeded x_T
(diffusion/noise.py), then the graphs text -> encode -> unet (once per step) -> decode, with the
solver's recorded arithmetic (diffusion/sampler.solver_matrix) and the anchor (diffusion/anchor.py) in
numpy. After the latents it runs the torch engine's own steps (finish.py: render, prompt motion, restore);
only the networks (the VAE decoder and the fusion net) are graphs here.
Nothing here imports torch, diffusers or transformers: a cold `stickers animate` pays for numpy,
onnxruntime, OpenCV and Pillow only.

It serves exactly the settings it was compiled for (manifest.json: scheduler, steps, guidance, frames,
conditioning frame, float32); the seed, `prompt_motion`, `room` and `paste_input` are free. Anything else, a
stale compile (the weights' digest differs) or a missing one falls back to the torch pipeline.

The compiled files are part of the model's identity (issue 29): manifest.json records the sha256 of every
file beside it (graphs and tokenizer) and of itself, and a file that is missing, damaged, replaced or
another format's is never run (`current_manifest` says which, as StaleCompile). A digest catches damage
and staleness; it is not a signature against someone who may write the folder. Every graph's output is
checked for finite values before it is used (resultcheck.py).
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
from ..flow import DEFAULT_PRESET
from ..rgba import images_to_array
from .finish import draw_frames, move_as_prompted, to_stickers
from .params import check_call, clip_layout
from .preprocess import Sticker
from .refdecode import references
from .resultcheck import check_finite, check_visible

COMPILED_DIR = "onnx"  # <model folder>/onnx/
FORMAT = 2  # manifest format (2: digests of every file); a compile of another format is stale
SETTINGS = ("scheduler", "steps", "image_guidance", "text_guidance", "guided_steps", "dtype", "anchor")
GRAPHS = ("text", "encode", "unet", "decode")  # + "fuse" with a reference decoder
TOKENIZER = "tokenizer.json"
REBUILD = "rebuild it with `stickers compile --force`"
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


def file_digest(path: Path) -> str:
    """sha256 of one file, read in chunks (graphs are tens of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's own content (all but this digest), so an edited manifest is stale too."""
    body = {k: v for k, v in manifest.items() if k != "manifest_digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def compiled_settings(params: SamplingConfig, frames: int, cond: int) -> dict:
    """What the compiled graphs bake in: the solver, guidance and clip layout of `params`."""
    return {**{k: getattr(params, k) for k in SETTINGS}, "num_frames": frames, "cond_frame": cond}


def graph_names(manifest: dict) -> tuple[str, ...]:
    """The graphs a compile runs: GRAPHS, + "fuse" with a reference decoder."""
    return GRAPHS + (("fuse",) if manifest.get("decoder") else ())


class StaleCompile(UserError):
    """A compile that must not run (missing or damaged file, other weights, older format); names the file."""


def current_manifest(folder: Path, graphs: tuple[str, ...] | None = None) -> dict | None:
    """The compile's manifest when it and every file it lists check out; None when there is no compile;
    StaleCompile naming the first file that does not. `graphs`: the graphs it must hold (default the video
    model's, `graph_names`; the motion model's compile passes its own, sampling/motion_onnx.py)."""
    compiled = folder / COMPILED_DIR
    path = compiled / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StaleCompile(f"'{path}' is unreadable ({type(e).__name__})") from None
    if not isinstance(manifest, dict):
        raise StaleCompile(f"'{path}' is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise StaleCompile(f"'{path}' is from another compile format ({manifest.get('format')}; this version "
                           f"writes {FORMAT}, with a digest of every graph)")
    files = manifest.get("files")
    if not isinstance(files, dict) or manifest.get("manifest_digest") != manifest_digest(manifest):
        raise StaleCompile(f"'{path}' was changed after the compile (its own digest differs)")
    if manifest.get("digest") != weights_digest(folder):
        raise StaleCompile(f"'{compiled}' was compiled from other weights")
    for name in (*(f"{g}.onnx" for g in graphs or graph_names(manifest)), TOKENIZER):
        if name not in files:
            raise StaleCompile(f"'{path}' has no digest for '{name}'")
    for name, digest in sorted(files.items()):
        file = compiled / Path(name).name  # names only: a manifest never points outside its folder
        if not file.is_file():
            raise StaleCompile(f"'{file}' is missing")
        if file_digest(file) != digest:
            raise StaleCompile(f"'{file}' does not match its digest in manifest.json (damaged or replaced)")
    return manifest


def read_manifest(folder: Path) -> dict | None:
    """The compile's manifest if it is current (see current_manifest), else None."""
    try:
        return current_manifest(folder)
    except StaleCompile:
        return None


def load_tokenizer(path: Path, length: int):
    """The compiled tokenizer.json padded and truncated to `length` tokens, as the torch encoders tokenize
    (models/text.py: padding="max_length", truncation), with the `tokenizers` library only."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(length)
    pad = tok.padding or {}
    tok.enable_padding(length=length, pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
    return tok


class OnnxPipeline:
    """animate_stickers() like AnimatePipeline's, on a compiled model folder; see the module docstring."""

    def __init__(self, folder: Path, manifest: dict, sampling: SamplingConfig, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.folder, self.manifest, self.sampling = folder, manifest, sampling
        opts = ort.SessionOptions()
        # onnxruntime's own default counts the machine's cores, not the ones this process may use.
        opts.intra_op_num_threads = threads or available_cores()
        opts.inter_op_num_threads = 1
        self.sessions = {n: self._session(ort, n, opts) for n in graph_names(manifest)}
        # The exporter drops inputs a graph does not use: feed each graph only its own.
        self.inputs = {n: {i.name for i in s.get_inputs()} for n, s in self.sessions.items()}
        self._check_shapes()
        self.tokenizer = self._tokenizer(int(manifest["text"]["max_length"]))
        self.stats: dict[str, float] = {}

    def _path(self, graph: str) -> Path:
        return self.folder / COMPILED_DIR / f"{graph}.onnx"

    def _session(self, ort, graph: str, opts):
        try:
            return ort.InferenceSession(str(self._path(graph)), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own types (InvalidProtobuf, Fail, ...) derive from Exception
            raise StaleCompile(f"'{self._path(graph)}' cannot be loaded by onnxruntime "
                               f"({type(e).__name__})") from None

    def _check_shapes(self) -> None:
        """StaleCompile when the UNet's fixed input shape is not the manifest's latent shape."""
        x = next((i for i in self.sessions["unet"].get_inputs() if i.name == "x"), None)
        want = [1, *self.manifest["latent"]]
        if x is None or [d if isinstance(d, int) else None for d in x.shape] != want:
            raise StaleCompile(f"'{self._path('unet')}' takes x of shape {None if x is None else x.shape}: "
                               f"manifest.json expects {want}")

    @classmethod
    def open(cls, folder: str | Path | None = None, threads: int | None = None) -> OnnxPipeline | None:
        """The compiled pipeline of a model folder (None: weights/tiny), or None when it has no current
        compile (missing, another format, or older than its weights)."""
        root = Path(folder) if folder else DEFAULT_MODEL_DIR
        try:
            return cls.load(root, threads)
        except StaleCompile:
            return None

    @classmethod
    def load(cls, root: Path, threads: int | None = None) -> OnnxPipeline | None:
        """Like `open`, but a compile that must not run is StaleCompile naming the file, not None."""
        manifest = current_manifest(root) if (root / "config.json").is_file() else None
        if manifest is None:
            return None
        meta = json.loads((root / "config.json").read_text())
        try:
            sampling = from_dict(SamplingConfig, meta.get("sampling", {}))
        except (ConfigError, TypeError):
            return None  # the torch pipeline reports a bad config.json with its own error
        return cls(root, manifest, sampling, threads)

    def _tokenizer(self, length: int):
        return load_tokenizer(self.folder / COMPILED_DIR / TOKENIZER, length)

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
        prompts, params = check_call(prompts, params or self.sampling, len(stickers))
        if not self.supports(params):
            raise UserError(f"model '{self.folder}' was compiled for {self.manifest['settings']}: "
                            "expected those settings (the torch pipeline takes any)")
        _, cond = self.layout(params)
        reference, placements = references(self.manifest.get("decoder") is not None, params.render, stickers,
                                           self.resolution)
        self.stats = {"nfe": 0.0}
        videos = []
        steps = len(self.manifest["solver"]["timesteps"])
        for i, (sticker, prompt) in enumerate(zip(stickers, prompts)):

            def step_done(k: int, i: int = i) -> None:  # the bar over all stickers
                if progress is not None:
                    progress(params.steps * (i * steps + k) // (len(stickers) * steps), params.steps)

            videos.append(self._video(sticker, prompt, params.seed + i, cond,
                                      None if reference is None else reference[i:i + 1], params, step_done))
        # After the latents: the same steps as the torch engine (finish.py).
        videos = move_as_prompted(np.concatenate(videos), prompts, cond, params)  # (B, T, S, S, 4)
        return to_stickers(videos, stickers, placements, cond, params)

    # ------------------------------------------------------------------ steps
    def _run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        """One graph's first output, checked finite (a damaged graph can pass its digest only if rewritten)."""
        t0 = time.perf_counter()
        try:
            out = self.sessions[graph].run(None, {k: v for k, v in inputs.items() if k in self.inputs[graph]})[0]
        except Exception as e:  # onnxruntime's errors (InvalidArgument, Fail, ...) derive from Exception
            raise StaleCompile(f"'{self._path(graph)}' failed to run ({type(e).__name__}: "
                               f"{str(e).splitlines()[0][:200]}): {REBUILD}") from None
        key = STAT_KEYS.get(graph, f"{graph}_s")
        self.stats[key] = self.stats.get(key, 0.0) + time.perf_counter() - t0
        return check_finite(out, "values", f"compiled graph '{self._path(graph)}'", REBUILD)

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
        """One sticker -> straight RGBA frames (1, T, S, S, 4) in [0, 1] before the prompt's motion."""
        canvas = images_to_array([sticker.canvas]).transpose(0, 3, 1, 2)  # (1, H, W, 4) -> (1, 4, H, W)
        image_latent = self._run("encode", canvas=canvas)  # (1, C, h, w)
        enc = self.tokenizer.encode_batch([prompt, ""])
        ids = np.array([e.ids for e in enc], np.int64)  # (2, L)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        context = self._run("text", ids=ids, mask=mask)  # (2, L, D): prompt, null
        noise = seeded_normal((1, *self.manifest["latent"]), [seed])  # (1, C, T, h, w)
        latents = self._denoise(noise, context, image_latent, cond, params.anchor, progress)
        self.stats["nfe"] = float(self.manifest["nfe"])
        check_finite(latents, "latents", f"model '{self.folder}'")  # the solver's sum of finite outputs
        t0 = time.perf_counter()
        # (1, 4, T, h, w) -> (1, T, h, w, 4)
        decoded = self._run("decode", latents=latents).transpose(0, 2, 3, 4, 1)

        video = draw_frames(decoded, reference, cond, params, self.flow_preset, self.fuse)  # (1, T, S, S, 4)
        check_visible(video[..., 3], [canvas[:, 3]], [sticker.name], f"compiled model '{self.folder / COMPILED_DIR}'",
                      REBUILD)
        # The whole decode (VAE, flow, warp, fusion), as AnimatePipeline's vae_decode_s.
        self.stats["vae_decode_s"] = self.stats.get("vae_decode_s", 0.0) + time.perf_counter() - t0
        return video

    @property
    def flow_preset(self) -> str:
        """The DIS preset of the render's flow: the compiled reference decoder's, else the default."""
        decoder = self.manifest.get("decoder")
        return decoder["flow_preset"] if decoder else DEFAULT_PRESET

    def fuse(self, low: np.ndarray, warped: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """The compiled fusion net (finish.Fuse): (N, 4, h, w), (N, 4, S, S), (N, 2, h, w) -> (N, 4, S, S)."""
        return self._run("fuse", low=np.ascontiguousarray(low), warped=np.ascontiguousarray(warped),
                         flow=np.ascontiguousarray(flow))
