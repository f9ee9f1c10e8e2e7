"""`stickers animate`, `stickers generate`, `stickers bench`: thin wiring around sampling/ and export/."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from ..config import DEFAULT_MODEL_DIR
from ..errors import UserError, one_line_errors
from .options import settings_options

Opt = typer.Option  # short alias: keeps the option tables below readable


def _params(pipe, given: dict):
    """The call's sampling settings: the pipeline's model defaults with the options given (torch-free)."""
    from .params import from_flags

    params = from_flags(pipe.sampling, given)
    pipe.layout(params)  # one error line for a conditioning frame outside the loop
    return params


ENGINES = ("auto", "onnx", "torch")
PATH_HELP = ("How the motion is made: motion (the learned motion model moves your sticker's own pixels along a "
             "generated loop; the default when weights/motion exists, or with --motion-model) or video (the "
             "paper's latent video model, weights/tiny or --model).")
MOTION_MODEL_HELP = "Motion model folder for the motion path (default weights/motion)."
FPS_HELP = ("Playback rate, 0.1 to 100 (GIF: 50); default 24 on the motion path (frames = fps x seconds), 8 on "
            "the video path.")


def _open_path(path: str, engine: str, model: Path | None, motion_model: Path | None, jit: bool, threads: int,
               flags: dict, fps: float):
    """(pipeline, params) of a call on generation `path`: the motion pipeline, else the video one
    (`_open_pipeline`); the loop's frame count is decided here (params.with_loop: fps x seconds)."""
    from .params import with_loop

    if path == "motion":
        from .paths import open_pipeline

        pipe = open_pipeline(path, None, motion_model, engine, threads or None)
        return pipe, with_loop(_params(pipe, flags), path, fps)
    pipe, params = _open_pipeline(engine, model, jit, threads, flags)
    return pipe, with_loop(params, path, fps)


def _compile_cmd(model: Path | None) -> str:
    return f"stickers compile{f' --model {model}' if model else ''}"


def _open_pipeline(engine: str, model: Path | None, jit: bool, threads: int, flags: dict):
    """(pipeline, params): the compiled ONNX pipeline where it serves these settings (engine auto or
    onnx), else the torch one. `flags`: the settings given (options.settings_options). A compile that must not
    run (a missing or damaged graph, other weights) is one note under auto and an error under onnx."""
    if engine != "torch" and not jit:
        from .onnx_pipeline import OnnxPipeline, StaleCompile

        try:
            fast = OnnxPipeline.load(model or DEFAULT_MODEL_DIR, threads or None)
        except StaleCompile as e:
            if engine == "onnx":
                raise StaleCompile(f"--engine onnx: {e}: run `{_compile_cmd(model)}` to rebuild it") from None
            typer.echo(f"note: {e}: using the torch engine (run `{_compile_cmd(model)}` to rebuild it)", err=True)
            fast = None
        if fast is not None:
            params = _params(fast, flags)
            if fast.supports(params):
                return fast, params
    if engine == "onnx":
        raise UserError(f"--engine onnx: model '{model or 'weights/tiny'}' has no current compile for these "
                        f"settings: run `{_compile_cmd(model)}` with them (--jit needs the torch engine)")
    from .pipeline import AnimatePipeline

    pipe = AnimatePipeline.from_dir(model, _speed(jit, threads))
    return pipe, _params(pipe, flags)


def _compile_video(model: Path | None, force: bool, settings: dict) -> None:
    """`stickers compile` of a video model: kept when its current compile serves these settings."""
    from .onnx_pipeline import OnnxPipeline

    current = None if force else OnnxPipeline.open(model)
    if current is not None and current.supports(_params(current, settings)):
        typer.echo(f"{current.folder / 'onnx'} is current (use --force to compile again)")
        return
    from .onnx_export import compile_model

    compile_model(model, log=typer.echo, **settings)


def _check_flags(engine: str, flags: dict, path: str = "video", fps: float | None = None, jit: bool = False) -> int:
    """The sampling options' ranges on the built-in defaults and what `path` can honour, before any model is
    loaded (a video-path conditioning frame without --frames is checked against the model's own loop length
    after). Returns the motion path's frames per loop (0 on the video path)."""
    from ..config import SamplingConfig
    from .params import MAX_VIDEO_FRAMES, check_path_settings, clip_layout, from_flags, motion_layout

    if engine not in ENGINES:
        raise UserError(f"--engine '{engine}': expected one of {', '.join(ENGINES)}")
    check_path_settings(path, flags)
    params = from_flags(SamplingConfig(), flags)
    if path == "video":
        clip_layout(params, MAX_VIDEO_FRAMES, 0)
        return 0
    if jit:
        raise UserError("--jit: the motion path has no TorchScript trace (its ONNX compile is the fast engine: "
                        "`stickers compile --motion-model DIR`); drop it or use --path video")
    return motion_layout(params, fps)[0]


def _speed(jit: bool, threads: int):
    from .optimize import SpeedOptions, set_threads

    set_threads(threads or None)
    return SpeedOptions(jit=jit)


def _write_frames(frames, folder: Path, stem: str) -> None:
    """PNG frames stem_00.png ... all written into a temp folder first, then moved in: an interrupted
    run leaves no partial frame set (only the quick renames at the end can be cut short)."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{stem}-frames.", suffix=".part") as name:
        tmp = Path(name)
        for i, f in enumerate(frames):
            f.save(tmp / f"{stem}_{i:02d}.png", format="PNG")
        for i in range(len(frames)):
            os.replace(tmp / f"{stem}_{i:02d}.png", folder / f"{stem}_{i:02d}.png")


@contextlib.contextmanager
def _new_folders(folders: set[Path]):
    """Make the missing `folders`; if the block fails, remove those of them that are still empty."""
    made = sorted(f for f in folders if not f.exists())
    for f in made:
        f.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for f in reversed(made):
            if f.is_dir() and not any(f.iterdir()):
                f.rmdir()
        raise


def _write(frames, out: Path, fps: float, preset: str | None, cond: int) -> tuple[Path, dict]:
    """Write one loop whose conditioning frame is `cond`: (the file, the loop as written: frames, fps and where
    that frame is in the file; a preset may retime the loop, or show that frame first)."""
    if preset:
        from ..export.presets import export_preset

        report = export_preset(frames, fps, preset, out, cond_frame=cond)
        return report.path, {"frames": report.frames, "fps": report.fps, "cond_index": report.cond_frame}
    from ..export.formats import write_animation

    return write_animation(frames, out, fps), {"frames": len(frames), "fps": fps, "cond_index": cond}


def _check_fps(fps: float, preset: str | None, outs: list[Path]) -> None:
    """--fps within what every output's format can play (a preset retimes to its own rate)."""
    from ..export.formats import check_format_fps, format_of
    from ..export.retime import check_fps

    check_fps(fps, "--fps")
    for out in [] if preset else outs:
        check_format_fps(format_of(out), fps)


class _Bar:
    """A tqdm bar over all sampling steps of all batches (stderr)."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="step", leave=False)
        self.base = 0

    def callback(self, done: int, total: int) -> None:
        self.bar.n = self.base + done
        self.bar.refresh()
        if done == total:
            self.base += total

    def close(self) -> None:
        self.bar.close()


def register(app: typer.Typer) -> None:
    """Add `animate`, `generate` and `bench` to the `stickers` app."""

    @app.command()
    @one_line_errors
    @settings_options()
    def animate(
        images: Annotated[list[Path] | None, typer.Argument(
            help="Sticker images (PNG/WebP/JPEG): RGBA, or on a plain background.")] = None,
        prompt: Annotated[list[str] | None, Opt("--prompt", "-p",
                                                help="Motion prompt: one for all, or one per image.")] = None,
        out: Annotated[Path | None, Opt("--out", "-o", help="Output file (.webp .gif .png .webm); a folder for "
                                                           "several images.")] = None,
        inputs: Annotated[Path | None, Opt(help='Folder of images + prompts.json [{"image", "prompt"}].')] = None,
        outputs: Annotated[Path | None, Opt(help="Folder for --inputs results, one file per image stem.")] = None,
        fmt: Annotated[str, Opt("--format", help="Format for folder outputs: webp, gif, png, webm.")] = "webp",
        preset: Annotated[str | None, Opt(help="Messenger preset (telegram, whatsapp, ...) instead of a "
                                               "format.")] = None,
        model: Annotated[Path | None, Opt(help="Video model folder for the video path (default weights/tiny).")] = None,
        path: Annotated[str | None, Opt("--path", help=PATH_HELP)] = None,
        motion_model: Annotated[Path | None, Opt(help=MOTION_MODEL_HELP)] = None,
        frames_out: Annotated[Path | None, Opt(help="Also write PNG frames here (stem_00.png ...).")] = None,
        fps: Annotated[float | None, Opt(help=FPS_HELP)] = None,
        batch_size: Annotated[int, Opt(help="Stickers per sampling call (1 or more).")] = 4,
        jit: Annotated[bool, Opt(help="TorchScript trace + freeze the UNet (checked against eager).")] = False,
        threads: Annotated[int, Opt(help="CPU threads (0 = all cores).")] = 0,
        engine: Annotated[str, Opt(help="auto (the model's ONNX compile when it has a current one for these "
                                        "settings, see `stickers compile`; else torch), onnx or torch. On the "
                                        "motion path any settings run on a current compile.")] = "auto",
        overwrite: Annotated[bool, Opt(help="With --inputs/--outputs: make every output again (by default a "
                                            "rerun skips those whose sidecar shows the same input, prompt, "
                                            "settings and model).")] = False,
        settings: dict | None = None,
    ) -> None:
        """Animate sticker(s): image + prompt -> looping transparent animation (motion path: fps x seconds, 48
        frames; video path: 8 frames, or --frames)."""
        from ..config import PATH_FPS
        from ..cpu import check_threads
        from ..export.presets import get_preset
        from .jobs import check_jobs, prepare_jobs
        from .params import check_loop_budget, check_seeds
        from .paths import choose_path

        # Every flag and input is checked before a model loads (seconds and hundreds of MB).
        flags, seed = settings or {}, (settings or {}).get("seed")
        check_threads(threads)
        if batch_size < 1:
            raise UserError(f"--batch-size {batch_size}: expected 1 or more stickers per sampling call")
        if seed is not None:
            check_seeds(seed)
        path, note = choose_path(path, model, motion_model)
        fps = PATH_FPS[path] if fps is None else fps
        _check_fps(fps, preset, [])
        frames = _check_flags(engine, flags, path, fps, jit)
        if preset:
            fmt = get_preset(preset).suffix
        if frames_out and frames_out.exists() and not frames_out.is_dir():
            raise UserError(f"--frames-out '{frames_out}' is a file: expected a folder")
        checked = check_jobs(images or [], prompt or [], out, inputs, outputs, fmt, preset)
        _check_fps(fps, preset, [j.out for j in checked])
        if seed is not None:
            check_seeds(seed, len(checked))
        if frames:  # the motion path's loop in memory: frames x the largest sticker's pixels
            check_loop_budget(frames, [j.rgba.size for j in checked])
        pipe, params = _open_path(path, engine, model, motion_model, jit, threads, flags, fps)
        if note:
            typer.echo(note, err=True)
        jobs = prepare_jobs(checked, pipe.resolution)
        from .resume import Sidecars, runs

        cond = pipe.layout(params)[1]
        extra = {"fps": fps, "preset": preset, "frames_out": frames_out and str(frames_out), "path": path}
        folder = Path(pipe.source) if path == "motion" else model or DEFAULT_MODEL_DIR
        made = Sidecars(folder, params, extra) if inputs is not None else None
        todo = list(range(len(jobs))) if made is None or overwrite else made.todo(checked)
        if len(todo) < len(jobs):
            typer.echo(f"skipped {len(jobs) - len(todo)} of {len(jobs)} output(s) already written with the same "
                       "input, prompt, settings and model (--overwrite redoes them)", err=True)
        batches = runs(todo, batch_size)  # consecutive jobs: sticker j always gets seed + j
        bar = _Bar(len(batches) * params.steps, f"animating {len(todo)} sticker(s)")
        folders = {jobs[j].out.parent for j in todo} | ({frames_out} if frames_out else set())
        try:
            with _new_folders(folders):
                for batch in batches:
                    call = dataclasses.replace(params, seed=params.seed + batch[0])
                    results = pipe.animate_stickers([jobs[j].sticker for j in batch], [jobs[j].prompt for j in batch],
                                                    call, bar.callback)
                    for j, seq in zip(batch, results):
                        written, loop = _write(seq, jobs[j].out, fps, preset, cond)
                        if frames_out:
                            _write_frames(seq, frames_out, jobs[j].stem)
                        if made is not None:
                            made.mark(j, checked[j], {"path": path, **loop})
                        bar.bar.write(f"wrote {written}")
        finally:
            bar.close()

    @app.command("generate")
    @one_line_errors
    @settings_options(only=("seed", "steps", "image_guidance", "text_guidance", "dtype", "seconds"))
    def text_to_sticker(
        prompt: Annotated[str, Opt("--prompt", "-p", help="What the sticker shows and does.")],
        out: Annotated[Path, Opt("--out", "-o", help="Output animation (.webp .gif .png .webm).")],
        still_out: Annotated[Path | None, Opt(help="Also save the generated still sticker (PNG).")] = None,
        t2i_model: Annotated[Path | None, Opt(help="Text-to-image model folder (default weights/tiny-t2i).")] = None,
        model: Annotated[Path | None, Opt(help="Video model folder for the video path (default weights/tiny).")] = None,
        path: Annotated[str | None, Opt("--path", help=PATH_HELP)] = None,
        motion_model: Annotated[Path | None, Opt(help=MOTION_MODEL_HELP)] = None,
        t2i_guidance: Annotated[float | None, Opt(help="Text guidance scale of the still.")] = None,
        fps: Annotated[float | None, Opt(help=FPS_HELP)] = None,
        preset: Annotated[str | None, Opt(help="Messenger preset instead of the --out suffix's format.")] = None,
        threads: Annotated[int, Opt(help="torch threads (0 = all cores).")] = 0,
        settings: dict | None = None,
    ) -> None:
        """Text -> still sticker (text-to-image model) -> animated sticker: the factorised pipeline.

        Experimental: the text-to-image model had only 500 CPU training steps; its stills are rough colour blobs.
        """
        from ..checks import check_prompt
        from ..config import PATH_FPS
        from ..cpu import check_threads
        from ..export.presets import get_preset
        from .jobs import check_out_file
        from .params import check_seeds, from_flags
        from .paths import choose_path
        from .pipeline import TextToImagePipeline
        from .preprocess import prepare_sticker

        flags = settings or {}
        text = check_prompt(prompt)
        check_threads(threads)
        if flags.get("seed") is not None:
            check_seeds(flags["seed"])
        path, note = choose_path(path, model, motion_model)
        fps = PATH_FPS[path] if fps is None else fps
        _check_fps(fps, preset, [out])
        _check_flags("torch", flags, path, fps)
        if preset:
            get_preset(preset)
        check_out_file(out, preset)
        t2i = TextToImagePipeline.from_dir(t2i_model, _speed(False, threads))
        video, params = _open_path(path, "torch", model, motion_model, False, threads, flags, fps)
        if note:
            typer.echo(note, err=True)
        still_params = from_flags(t2i.model.sampling, {**flags, "image_guidance": None, "text_guidance": t2i_guidance,
                                                       "seconds": None})
        bar = _Bar(still_params.steps + params.steps, "generating")
        try:
            still = t2i.stills([text], still_params, bar.callback)[0]
            if still_out:
                from ..export.formats import atomic_output

                with atomic_output(Path(still_out)) as tmp:
                    still.save(tmp, format="PNG")
            sticker = prepare_sticker(still, "generated still", video.resolution, key=False)
            frames = video.animate_stickers([sticker], [text], params, bar.callback)[0]
            written = _write(frames, out, fps, preset, video.layout(params)[1])[0]
        finally:
            bar.close()
        typer.echo(f"wrote {written}")

    @app.command("compile")
    @one_line_errors
    @settings_options(only=("steps", "scheduler", "num_frames"))
    def compile_(
        model: Annotated[Path | None, Opt(help="Video model folder (default weights/tiny).")] = None,
        motion_model: Annotated[Path | None, Opt(help="Motion model folder (any steps and guidance run on its "
                                                      "compile). Neither given: weights/tiny, and weights/motion "
                                                      "when it exists.")] = None,
        force: Annotated[bool, Opt(help="Compile even when a current compile exists.")] = False,
        settings: dict | None = None,
    ) -> None:
        """Compile a model's default sampling to ONNX (MODEL/onnx/): `animate` then runs without torch."""
        from .paths import bundled_motion_model

        given = [k for k, v in (settings or {}).items() if v is not None]
        if given and model is None and motion_model is not None:
            raise UserError(f"--{given[0].replace('_', '-')} sets the video model's compile: the motion model's "
                            "compile runs any steps (add --model DIR to compile a video model too)")
        if model is not None or motion_model is None:
            _compile_video(model, force, settings or {})
        if motion_model is None and model is None:
            motion_model = bundled_motion_model()  # beside the bundled video model, when there is one
        if motion_model is not None:
            from .motion_compile import compile_motion_model

            compile_motion_model(motion_model, log=typer.echo, force=force)

    @app.command()
    @one_line_errors
    def bench(
        json_out: Annotated[bool, Opt("--json", help="Print one JSON object (otherwise a table).")] = False,
        model: Annotated[Path | None, Opt(help="Video model folder (default weights/tiny, else a random one).")] = None,
        random: Annotated[bool, Opt(help="Use a random tiny model (works without trained weights).")] = False,
        distilled: Annotated[Path | None, Opt(help="Distilled model folder for the 'distilled' slot.")] = None,
        repeats: Annotated[int, Opt(min=1, help="Timed repeats per measurement (median).")] = 1,
        batch: Annotated[int, Opt(min=1, help="Batch size of the per-sticker-at-batch measurement.")] = 4,
        motion_model: Annotated[Path | None, Opt(help="Motion model folder for the motion rows (default "
                                                      "weights/motion, else a random default-size one).")] = None,
        configs: Annotated[str | None, Opt(help="Comma-separated subset: naive, dpm15, dpm15-adaptive, "
                                                "dpm15-adaptive-optimized, distilled, onnx, distilled-onnx, "
                                                "motion (the motion model's rows).")] = None,
        threads: Annotated[int, Opt(help="torch threads (0 = all cores).")] = 0,
        save: Annotated[Path | None, Opt(help="Also write the JSON to this file.")] = None,
        resolutions: Annotated[str | None, Opt(help="Instead: the cost of native canvas sizes, e.g. 128,256 "
                                                    "(a training step and a sampled sticker each).")] = None,
        cold: Annotated[bool, Opt("--cold", help="Instead: a fresh `stickers animate` process end to end (cold "
                                                 "start) beside the same call warm.")] = False,
    ) -> None:
        """Benchmark naive vs DPM-Solver vs adaptive vs optimised sampling (paper 3.3.1), and the motion model."""
        from ..cpu import check_threads
        from .bench import format_table, run_bench

        check_threads(threads)
        if random and (model is not None or motion_model is not None):
            raise UserError(f"give {'--model' if model is not None else '--motion-model'} DIR or --random, not both")
        if resolutions:
            from .optimize import set_threads
            from .rescost import format_resolution_table, resolution_cost

            set_threads(threads or None)
            try:
                sizes = [int(x) for x in resolutions.split(",")]
            except ValueError:
                raise UserError(f"--resolutions '{resolutions}': expected integers such as 128,256") from None
            result, table = resolution_cost(sizes, repeats), format_resolution_table
        elif cold:
            from .coldstart import cold_start, format_cold

            result, table = cold_start(model, threads or None, repeats), format_cold
        else:
            result = run_bench(model=model, random=random, distilled=distilled, repeats=repeats, batch=batch,
                               only=configs.split(",") if configs else None, threads=threads or None,
                               motion_model=motion_model)
            table = format_table
        text = json.dumps(result, indent=2)
        if save:
            from ..export.formats import atomic_output

            with atomic_output(Path(save)) as tmp:
                tmp.write_text(text + "\n")
        typer.echo(text if json_out else table(result))
