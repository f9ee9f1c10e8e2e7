"""`stickers eval ...`: automatic judges (auto, calibrate); the human evaluation app mounts as `human`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from tqdm import tqdm

from ..errors import UserError, one_line_errors
from ..sampling.options import settings_options

app = typer.Typer(
    help="Evaluate animated stickers: automatic measures and human evaluation.", no_args_is_help=True
)

try:
    from .human.cli import app as human_app

    app.add_typer(human_app, name="human")
except ModuleNotFoundError:
    pass


def _bar(desc: str):
    """A progress wrapper writing to stderr (stdout stays clean for --json)."""
    return lambda it: tqdm(it, desc=desc, file=sys.stderr, leave=False)


def _animator(pipe, params):
    """`animate(rgba, prompts, seed=None)`: one sticker (H, W, 4) uint8 under several prompts through the
    pipeline at `params` (the seed replaced when given) -> one clip (T, H, W, 4) uint8 per prompt."""
    import dataclasses

    import numpy as np
    from PIL import Image

    def animate(rgba, prompts, seed=None):
        call = params if seed is None else dataclasses.replace(params, seed=seed)
        seqs = pipe.animate([Image.fromarray(rgba, "RGBA")] * len(prompts), prompts, call)
        return [np.stack([np.asarray(f.convert("RGBA")) for f in seq]) for seq in seqs]

    return animate


PATH_HELP = ("motion (the learned motion model; the default when weights/motion exists, or with --motion-model) "
             "or video (the paper's latent video model, weights/tiny or --model), as `stickers animate` chooses.")
MOTION_MODEL_HELP = "Motion model folder for the motion path (default weights/motion)."
MOTION_CLIP_SIZE = 256  # the motion path renders at the input's size: clips at the README example's 256 px


def _open(path: str | None, model: Path | None, motion_model: Path | None, given: dict):
    """(pipeline, params, frames, conditioning index, fps) of an eval command on the generation path chosen as
    `stickers animate` chooses it (sampling/paths.choose_path), at that path's loop: motion 48 frames at 24
    fps, the still frame 0; video the model's frames as a 1 s loop, as before."""
    from ..config import PATH_FPS
    from ..sampling.params import check_path_settings, from_flags, with_loop
    from ..sampling.paths import choose_path, open_pipeline

    path, note = choose_path(path, model, motion_model)
    check_path_settings(path, given)
    pipe = open_pipeline(path, model, motion_model)
    if note:
        print(note, file=sys.stderr)
    params = with_loop(from_flags(pipe.sampling, given), path, PATH_FPS[path])
    t, cond = pipe.layout(params)
    return pipe, params, t, cond, PATH_FPS[path] if path == "motion" else float(t)


@app.command()
@one_line_errors
def auto(
    inputs: Path | None = typer.Option(None, help="Folder of sticker images + prompts.json."),
    outputs: Path | None = typer.Option(None, help="Folder with one animation per input, named by its stem."),
    model: Path | None = typer.Option(
        None, help="Video model folder: generate for real held-out clips on the video path, then judge."
    ),
    motion_model: Path | None = typer.Option(None, help="Motion model folder: generate on the motion path, then "
                                                        "judge."),
    path: str | None = typer.Option(None, "--path", help="Generate on this path, then judge: " + PATH_HELP),
    split: str = typer.Option(
        "heldout", help="With --model: which split of the Fluent clips (heldout|train|all)."
    ),
    limit: int | None = typer.Option(None, min=1, help="With --model: at most this many clips."),
    assets: str | None = typer.Option(
        None, help="With --model: glob of real animated WebPs (default: Fluent)."
    ),
    real: Path | None = typer.Option(None, help="Folder of the artist's animations named by stem: adds the motion "
                                                "criteria (size, where, parts against the artist's clip)."),
    report: Path | None = typer.Option(None, help="Where to write per_sticker.jsonl + summary.{json,md}."),
    thresholds: Path | None = typer.Option(None, help="Thresholds JSON (default: the calibrated one)."),
    batch_size: int = typer.Option(4, min=1, help="With --model: stickers per sampling call."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary JSON on stdout."),
) -> None:
    """Judge generated animations with the automatic measures (pass rate per criterion)."""
    from .auto import judge_folder, motion_stats_summary, summarise
    from .report import dumps, summary_markdown, write_results
    from .thresholds import load_thresholds

    th = load_thresholds(thresholds)
    real_frames = None
    if model is not None or motion_model is not None or path is not None:
        if inputs is not None or outputs is not None:
            raise UserError(
                "--model generates its own inputs/outputs: give either --model or --inputs/--outputs"
            )
        if split not in ("heldout", "train", "all"):
            raise UserError(f"--split '{split}': expected heldout, train or all")
        from .samples import animate_clips, real_animations, real_clips

        pipe = _open(path, model, motion_model, {})[0]
        folder = Path(pipe.source or "model")
        report = report or Path(f"eval-auto-{folder.name or 'model'}-{split}")
        size = pipe.resolution if pipe.path == "video" else MOTION_CLIP_SIZE
        clips = real_clips(split, limit, size=size, pattern=assets, progress=_bar("clips"))
        inputs, outputs = animate_clips(pipe, clips, report, batch_size, progress=_bar("generate"))
        real_frames = real_animations(clips, assets)
    elif inputs is None or outputs is None:
        raise UserError("give --inputs DIR and --outputs DIR (or --model DIR to generate first)")
    elif real is not None:
        real_frames = _read_real_folder(real)
    report = report or outputs / "eval"
    results = judge_folder(inputs, outputs, th, real=real_frames, progress=_bar("judge"))
    summary = summarise(results, th)
    summary["thresholds_source"] = str(thresholds or "package default") + ": " + th["existence"].source
    rows = [{"stem": r.stem, **r.extra["vs_real"]} for r in results if "vs_real" in r.extra]
    if real_frames is not None:
        summary["vs_real"] = motion_stats_summary(rows)
    paths = write_results(report, [r.to_json() for r in results], summary)
    if json_out:
        print(dumps(summary))
    else:
        print(summary_markdown(summary))
        print(f"wrote {paths['jsonl']}, {paths['json']}, {paths['md']}", file=sys.stderr)


AXES_SETTINGS = ("steps", "text_guidance", "image_guidance", "num_frames", "prompt_motion", "room")
SHEET_SETTINGS = ("num_frames", "room")


@app.command()
@one_line_errors
@settings_options(only=AXES_SETTINGS)
def axes(
    model: Path = typer.Option(None, help="Video model folder for the video path (default: weights/tiny)."),
    motion_model: Path | None = typer.Option(None, help=MOTION_MODEL_HELP),
    path: str | None = typer.Option(None, "--path", help=PATH_HELP),
    style: list[str] = typer.Option(["heldout"], help="heldout, fluent-high-contrast, twemoji, noto (repeatable)."),
    n: int = typer.Option(10, min=1, help="Stickers per style (4 motion prompts each, plus a second seed)."),
    size: int = typer.Option(256, min=64, max=512, help="Sticker size (long side, px)."),
    report: Path | None = typer.Option(None, help="Write axes.json + axes.md here."),
    settings: dict | None = None,
) -> None:
    """Detail, relevance and looping on held-out and unseen-style stickers (what a user sees first)."""
    import dataclasses
    import json

    from ..atomic import atomic_write_text
    from ..data.sources import default_cache
    from ..sampling.prompt_motion import draws_smaller
    from .axes import STYLES, evaluate_style, load_stickers, summary_markdown
    from .thresholds import load_motion_section, load_thresholds

    bad = [s for s in style if s not in STYLES]
    if bad:
        raise UserError(f"--style '{bad[0]}': expected one of {', '.join(STYLES)}")
    pipe, params, t, cond, fps = _open(path, model, motion_model, settings or {})
    animate = _animator(pipe, params)
    th = load_thresholds()
    motion = load_motion_section()
    results = {}
    for s in style:
        stickers = load_stickers(s, n, default_cache(), size)
        results[s] = evaluate_style(animate, stickers, cond, fps, th, progress=_bar(f"axes {s}"),
                                    room=params.prompt_motion and draws_smaller(params), motion=motion)
    text = summary_markdown(results)
    print(text)
    if report:
        report.mkdir(parents=True, exist_ok=True)
        atomic_write_text(report / "axes.json", json.dumps({"params": dataclasses.asdict(params), **results},
                                                           indent=1, default=str))
        atomic_write_text(report / "axes.md", text + "\n")


@app.command()
@one_line_errors
@settings_options(only=SHEET_SETTINGS)
def sheet(
    image: Path | None = typer.Argument(None, help="The sticker (PNG/WebP with transparency); or give --artist."),
    prompt: list[str] = typer.Option(..., "--prompt", help="One row per prompt (repeatable)."),
    out: Path = typer.Option(..., help="The contact sheet (.png); the animated grid goes beside it (.webp)."),
    artist: Path | None = typer.Option(None, help="An artist's animated clip (WebP/GIF/video): its frame 0 is the "
                                       "still and the clip itself is the first row, beside the model's rows."),
    model: Path = typer.Option(None, help="Video model folder for the video path (default: weights/tiny)."),
    motion_model: Path | None = typer.Option(None, help=MOTION_MODEL_HELP),
    path: str | None = typer.Option(None, "--path", help=PATH_HELP),
    tile: int = typer.Option(96, min=32, max=512, help="Frame size on the sheet (px)."),
    settings: dict | None = None,
) -> None:
    """One sticker under several prompts: a contact sheet labelled with the motion measured in each row."""
    import numpy as np

    from ..data.animation import read_animation
    from ..sampling.preprocess import load_image
    from .sheet import prompt_sheet

    if out.suffix.lower() != ".png":
        raise UserError(f"--out '{out}': expected a .png file")
    if (image is None) == (artist is None):
        raise UserError("eval sheet: expected a sticker image or --artist CLIP (one of them)")
    reference = None
    if artist is not None:
        anim = read_animation(artist)  # AnimationReadError (a UserError) names the file
        reference = (f"artist's clip ({artist.stem})", anim.frames, anim.fps)
        still = anim.frames[0]
    else:
        still = np.asarray(load_image(image).convert("RGBA"))
    pipe, params, t, cond, fps = _open(path, model, motion_model, settings or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = prompt_sheet(_animator(pipe, params), still, prompt, out, cond, fps=fps, tile=tile, artist=reference)
    for r in rows:
        print(f"{r['measured']:>10}  {r['prompt']}")
    print(f"wrote {out} and {out.with_suffix('.webp')}")


@app.command()
@one_line_errors
def decoder(
    model: Path = typer.Option(None, help="Model folder with a reference decoder (default: weights/tiny)."),
    n: int = typer.Option(40, min=1, help="Held-out Fluent clips."),
    size: int = typer.Option(256, min=128, max=512, help="Output size (px)."),
    noise: float = typer.Option(0.0, min=0.0, help="Gaussian noise on the latents (generation errors)."),
    report: Path | None = typer.Option(None, help="Write decoder.json here."),
) -> None:
    """The reference decoder vs decode-and-upscale on real held-out clips: PSNR/SSIM at `size`, detail."""
    import json

    import torch

    from ..atomic import atomic_write_text
    from ..models.checkpoint import DEFAULT_MODEL_DIR, load_model
    from .axes import decoder_reconstruction
    from .realclips import fluent_files, load_real_clips

    m = load_model(model or DEFAULT_MODEL_DIR)
    if m.decoder is None:
        raise UserError(f"model '{model or DEFAULT_MODEL_DIR}' has no reference decoder (train a `decoder` stage)")
    torch.manual_seed(0)
    clips = load_real_clips(fluent_files(split="heldout"), n, size=size)
    r = decoder_reconstruction(m, clips, size, noise, progress=_bar("decoder"))
    print(f"{r['clips']} held-out clips at {size} px (medians, decode-and-upscale -> reference decoder): "
          f"PSNR {r['plain_psnr']:.2f} -> {r['decoder_psnr']:.2f} dB, SSIM {r['plain_ssim']:.3f} -> "
          f"{r['decoder_ssim']:.3f}, detail {r['plain_detail']:.2f} -> {r['decoder_detail']:.2f}, "
          f"conditioning frame {r['plain_cond_psnr']:.1f} -> {r['decoder_cond_psnr']:.1f} dB")
    if report:
        report.mkdir(parents=True, exist_ok=True)
        atomic_write_text(report / "decoder.json", json.dumps(r, indent=1))


def _read_real_folder(folder: Path) -> dict:
    """stem -> Animation (frames + frame rate) for every readable animation in `folder`."""
    from ..data.animation import read_animation
    from .auto import OUTPUT_SUFFIXES

    if not folder.is_dir():
        raise UserError(f"'{folder}': real-animations folder not found")
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in OUTPUT_SUFFIXES and p.stem not in out:
            out[p.stem] = read_animation(p)
    return out


@app.command()
@one_line_errors
def calibrate(
    out: Path = typer.Option(
        Path("eval-calibration"), help="Folder for calibration.{md,json} + thresholds.json."
    ),
    split: str = typer.Option("heldout", help="Which split of the Fluent clips (heldout|train|all)."),
    limit: int | None = typer.Option(None, min=1, help="At most this many animated clips."),
    assets: str | None = typer.Option(None, help="Glob of Fluent animated WebPs (default: the npm cache)."),
    install: bool = typer.Option(False, help="Also make these the package's default thresholds."),
) -> None:
    """Run every measure on real held-out clips and broken versions; fit and report thresholds."""
    from .calibrate import run_calibration
    from .realclips import default_fluent_glob, fluent_files
    from .thresholds import THRESHOLDS_FILE

    if split not in ("heldout", "train", "all"):
        raise UserError(f"--split '{split}': expected heldout, train or all")
    files = fluent_files(assets or default_fluent_glob(), split=split)
    if not files:
        raise UserError(f"no Fluent WebPs match '{assets or default_fluent_glob()}' in split '{split}'")
    try:
        result = run_calibration(out, files, split, limit=limit, progress=_bar("calibrate"))
    except ValueError as e:
        raise UserError(f"'{assets or default_fluent_glob()}': {e}") from None
    print(result["markdown"])
    if install:
        _install_thresholds(THRESHOLDS_FILE, json.loads((out / "thresholds.json").read_text()))
        print(f"installed thresholds into {THRESHOLDS_FILE}", file=sys.stderr)


def _install_thresholds(path: Path, update: dict) -> None:
    """Replace the parts of the package's thresholds.json that `update` holds (the ten criteria's
    "meta"/"criteria", or the "motion" section), keeping the rest."""
    from ..atomic import atomic_write_text
    from .report import dumps

    current = json.loads(path.read_text()) if path.is_file() else {}
    atomic_write_text(path, dumps(current | update) + "\n")


def _kinds_sheets(files: list[Path], stems: list[str], out: Path) -> None:
    """kinds-STEM.png for each asked-for emoji (another emoji's motion: the next file's)."""
    from .motion_calibrate import kinds_sheet, load_window

    by_stem = {p.stem: i for i, p in enumerate(files)}
    out.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        if stem not in by_stem:
            raise UserError(f"--sheet '{stem}': not a held-out Fluent animation (expected a file stem such as 1f44b)")
        i = by_stem[stem]
        w = load_window(files[i])
        other = next((o for o in (load_window(p) for p in files[i + 1:] + files[:i]) if o is not None), None)
        if w is None or other is None:
            raise UserError(f"--sheet '{stem}': a still, not an animation")
        kinds_sheet(w, other, out / f"kinds-{stem}.png")
        print(f"wrote {out / f'kinds-{stem}.png'}", file=sys.stderr)


@app.command("calibrate-motion")
@one_line_errors
def calibrate_motion(
    out: Path = typer.Option(Path("eval-calibration"), help="Folder for motion-calibration.{md,json}."),
    limit: int | None = typer.Option(None, min=4, help="At most this many animated clips."),
    assets: str | None = typer.Option(None, help="Glob of Fluent animated WebPs (default: the npm cache)."),
    check_train: bool = typer.Option(False, help="Fit the bands on the training split's emoji (hundreds, not "
                                                  "30) and check them on every held-out one (a few minutes more)."),
    sheet: list[str] = typer.Option([], help="Also draw the kinds of this held-out emoji (file stem, e.g. "
                                             "1f44b) as a contact sheet OUT/kinds-STEM.png (repeatable)."),
    install: bool = typer.Option(False, help="Also make these the package's motion thresholds (and the "
                                              "report beside them, MOTION_CALIBRATION.md)."),
) -> None:
    """Fit the motion criteria (size, where, parts vs the artist's clip) on half the held-out Fluent emoji,
    check them on the other half against broken copies (small, bulk, frozen, swapped)."""
    from ..atomic import atomic_write_text
    from .motion_calibrate import run_motion_calibration
    from .realclips import default_fluent_glob, fluent_files
    from .thresholds import THRESHOLDS_FILE

    files = fluent_files(assets or default_fluent_glob(), split="heldout")
    if not files:
        raise UserError(f"no held-out Fluent WebPs match '{assets or default_fluent_glob()}'")
    try:
        train = fluent_files(assets or default_fluent_glob(), split="train") if check_train else None
        result = run_motion_calibration(out, files, limit=limit, progress=_bar("calibrate-motion"),
                                        train_files=train)
    except ValueError as e:
        raise UserError(f"'{assets or default_fluent_glob()}': {e}") from None
    print(result["markdown"])
    _kinds_sheets(files, sheet, out)
    if install:
        _install_thresholds(THRESHOLDS_FILE, {"motion": result["section"]})
        atomic_write_text(THRESHOLDS_FILE.with_name("MOTION_CALIBRATION.md"), result["markdown"] + "\n")
        print(f"installed motion thresholds into {THRESHOLDS_FILE}", file=sys.stderr)


@app.command("motion-model")
@one_line_errors
def motion_model(
    model: Path = typer.Option(..., help="Motion model folder (config.json + motion.safetensors)."),
    out: Path | None = typer.Option(None, help="Folder for report.json + REPORT.md (default: eval-motion-MODEL)."),
    limit: int | None = typer.Option(None, min=2, help="At most this many held-out emoji (one clip per base emoji)."),
    seeds: int = typer.Option(6, min=0, max=16, help="Seeds per emoji in the seed measure (0 or 1: skip it)."),
    seed_emoji: int = typer.Option(20, min=1, help="Held-out emoji (the first ones) that get every seed."),
    style: list[str] = typer.Option(["twemoji", "noto", "fluent-high-contrast"],
                                    help="Unseen style (twemoji, noto, fluent-high-contrast) or a folder of stills "
                                         "(repeatable; 'none' skips the style and prompt measures)."),
    per_style: int = typer.Option(10, min=1, help="Stickers per unseen style."),
    fps: float = typer.Option(24.0, min=4.0, max=60.0, help="Render frame rate."),
    seconds: float = typer.Option(2.0, min=0.5, max=10.0, help="Render loop length (s)."),
    steps: int = typer.Option(20, min=1, max=200, help="Sampler steps."),
    image_guidance: float = typer.Option(1.0, min=0.0, max=20.0, help="IP2P image guidance."),
    text_guidance: float = typer.Option(1.0, min=0.0, max=20.0, help="IP2P text guidance."),
    bank: Path | None = typer.Option(None, help="Cached training MotionBank (RUN/banks/motion-*.safetensors) for the "
                                                "retrieval baseline (default: recomputed from training-split clips)."),
    assets: str | None = typer.Option(None, help="Glob of Fluent animated WebPs (default: the fetched packages)."),
    split: str = typer.Option("heldout", help="Split of the evaluated clips (heldout; all for tests)."),
    size: int = typer.Option(256, min=32, max=1024, help="Stills are rendered with this long side (px)."),
    threads: int = typer.Option(0, min=0, help="torch threads (0 = torch's default)."),
) -> None:
    """The learned motion model on issue 28's bars, in one run: held-out emoji vs the artist's clip beside
    name retrieval, chance and ceiling (with and without near-twins), seeds, unseen styles and prompts."""
    import time

    import torch

    from ..models.motion_net import load_motion_model
    from ..models.text import load_text_encoders
    from ..sampling.params import loop_frames
    from .motion_model import (
        Limits,
        Settings,
        library_from_bank,
        library_from_clips,
        load_styles,
        run,
        short_table,
        write_report,
    )
    from .realclips import default_fluent_glob, fluent_files

    started = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    if split not in ("heldout", "train", "all"):
        raise UserError(f"--split '{split}': expected heldout, train or all")
    settings = Settings(fps, seconds, steps, image_guidance, text_guidance)
    loop_frames(fps, seconds)  # the product's loop rule: an fps x seconds it refuses is refused before any work
    net = load_motion_model(model)
    pattern = assets or default_fluent_glob()
    files = fluent_files(pattern, split=split)
    if not files:
        raise UserError(f"no Fluent WebPs match '{pattern}' in split '{split}'")
    if bank is not None:
        if not bank.is_file():
            raise UserError(f"--bank '{bank}': file not found")
        library = library_from_bank(bank)
    else:
        library = library_from_clips(fluent_files(pattern, split="train"), lambda it, d: _bar(d)(it))
    if not library.names:
        raise UserError("the retrieval library is empty (no training-split motions)")
    styles = load_styles([s for s in style if s != "none"], per_style, size)
    command = (f"stickers eval motion-model --model {model} --seeds {seeds} --seed-emoji {seed_emoji} "
               f"--per-style {per_style} --fps {fps:g} --seconds {seconds:g} --steps {steps} --image-guidance "
               f"{image_guidance:g} --text-guidance {text_guidance:g} --size {size}" +
               (f" --limit {limit}" if limit else "") + (f" --bank {bank}" if bank else "") +
               "".join(f" --style {s}" for s in style))
    meta = {"model": str(model), "command": command}
    try:
        meta["snapshot_step"] = json.loads((model / "config.json").read_text()).get("snapshot_step")
    except (OSError, ValueError):
        pass
    out = out or Path(f"eval-motion-{model.name or 'model'}")

    def checkpoint(report: dict) -> None:  # after every measure: a late failure keeps what was measured
        report["meta"]["timings"]["command_s"] = time.perf_counter() - started
        write_report(out, report)

    report = run(net, load_text_encoders([net.cfg.text]), files, library, styles, settings,
                 Limits(limit, seed_emoji, seeds, per_style), size, lambda it, d: _bar(d)(it), meta, checkpoint)
    paths = out / "report.json", out / "REPORT.md"
    print(short_table(report))
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)
