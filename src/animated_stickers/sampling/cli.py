"""`stickers animate`, `stickers generate`, `stickers bench`: thin wiring around sampling/ and export/."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from ..config import DEFAULT_MODEL_DIR
from ..errors import UserError, one_line_errors

Opt = typer.Option  # short alias: keeps the option tables below readable
SCHEDULER_HELP = "dpm (DPM-Solver++ 2M, logSNR grid), dpm-lu, ddim, ddpm or lcm (consistency-distilled models)."


def _params(pipe, seed, steps, image_guidance, text_guidance, guided_steps, scheduler, bf16, paste_input=None,
            frames=None, cond_frame=None, prompt_motion=None, render=None, room=None):
    """The call's sampling settings: the pipeline's model defaults with the flags given (torch-free)."""
    from .params import check_params, with_overrides

    params = check_params(with_overrides(pipe.sampling, seed=seed, steps=steps, image_guidance=image_guidance,
                                         text_guidance=text_guidance, guided_steps=guided_steps,
                                         scheduler=scheduler, dtype="bfloat16" if bf16 else None,
                                         paste_input=paste_input, num_frames=frames, cond_frame=cond_frame,
                                         prompt_motion=prompt_motion, render=render, room=room))
    pipe.layout(params)  # one error line for a conditioning frame outside the loop
    return params


ENGINES = ("auto", "onnx", "torch")


def _open_pipeline(engine: str, model: Path | None, jit: bool, threads: int, flags: tuple):
    """(pipeline, params): the compiled ONNX pipeline where it serves these settings (engine auto or
    onnx), else the torch one. `flags` are _params' arguments after the pipeline."""
    if engine not in ENGINES:
        raise UserError(f"--engine '{engine}': expected one of {', '.join(ENGINES)}")
    if engine != "torch" and not jit:
        from .onnx_pipeline import COMPILED_DIR, OnnxPipeline

        fast = OnnxPipeline.open(model, threads or None)
        compiled = (model or DEFAULT_MODEL_DIR) / COMPILED_DIR
        if fast is None and (compiled / "manifest.json").is_file():
            typer.echo(f"note: {compiled} was compiled from other weights: using the torch engine (run "
                       "`stickers compile` to start faster)", err=True)
        if fast is not None:
            params = _params(fast, *flags)
            if fast.supports(params):
                return fast, params
    if engine == "onnx":
        raise UserError(f"--engine onnx: model '{model or 'weights/tiny'}' has no current compile for these "
                        f"settings: run `stickers compile{f' --model {model}' if model else ''}` with them "
                        "(--jit needs the torch engine)")
    from .pipeline import AnimatePipeline

    pipe = AnimatePipeline.from_dir(model, _speed(jit, threads))
    return pipe, _params(pipe, *flags)


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


def _write(frames, out: Path, fps: float, preset: str | None) -> Path:
    if preset:
        from ..export.presets import export_preset

        return export_preset(frames, fps, preset, out).path
    from ..export.formats import write_animation

    return write_animation(frames, out, fps)


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
        model: Annotated[Path | None, Opt(help="Video model folder (default weights/tiny).")] = None,
        seed: Annotated[int | None, Opt(help="Noise seed (sticker i of a call uses seed + i).")] = None,
        steps: Annotated[int | None, Opt(help="Solver steps (model default: 15).")] = None,
        image_guidance: Annotated[float | None, Opt(help="sigma_I, image guidance scale (paper: 7.5-9).")] = None,
        text_guidance: Annotated[float | None, Opt(help="sigma_T, text guidance scale (paper: 1.5-3).")] = None,
        guided_steps: Annotated[int | None, Opt(help="Adaptive guidance: full guidance for the first k steps.")] = None,
        scheduler: Annotated[str | None, Opt(help=SCHEDULER_HELP)] = None,
        paste_input: Annotated[bool | None, Opt("--paste-input/--decode-input", help="Put your exact sticker at "
                                                "the conditioning frame, or its VAE-decoded copy like the other "
                                                "frames (model default).")] = None,
        frames_out: Annotated[Path | None, Opt(help="Also write PNG frames here (stem_00.png ...).")] = None,
        fps: Annotated[float, Opt(help="Playback rate of the frames.")] = 8.0,
        frames: Annotated[int | None, Opt("--frames", help="Frames per loop: 8 (model default) or 16, up to 32; "
                                                           "the loop has no seam at any length.")] = None,
        cond_frame: Annotated[int | None, Opt("--cond-frame", help="Which frame is your sticker (0-based; "
                                                                   "default the middle: 3 of 8, 7 of 16).")] = None,
        prompt_motion: Annotated[bool | None, Opt("--prompt-motion/--model-motion-only", help="Move the sticker "
                                                  "exactly as the prompt says (bouncing, spinning, ... with "
                                                  "gently/wildly/slowly/quickly; model default), or leave all "
                                                  "motion to the model.")] = None,
        room: Annotated[bool | None, Opt("--room/--no-room", help="Draw a sticker that fills its canvas smaller "
                                         "(down to 0.7) so the prompt's motion keeps its size and stays in view "
                                         "(model default), or keep its size and shrink the motion.")] = None,
        render: Annotated[str | None, Opt("--render", help="warp (default): your sticker's own pixels moved "
                                          "along the model's motion, kept to its slowest loop cycles: crisp and "
                                          "seamless; fuse: the learned decoder, which may also draw new content "
                                          "(and, with this small model, colour blobs).")] = None,
        batch_size: Annotated[int, Opt(help="Stickers per sampling call (1 or more).")] = 4,
        bf16: Annotated[bool, Opt(help="bfloat16 autocast (faster on CPUs with AMX/AVX512-bf16).")] = False,
        jit: Annotated[bool, Opt(help="TorchScript trace + freeze the UNet (checked against eager).")] = False,
        threads: Annotated[int, Opt(help="CPU threads (0 = all cores).")] = 0,
        engine: Annotated[str, Opt(help="auto (the model's ONNX compile when it has a current one for these "
                                        "settings, see `stickers compile`; else torch), onnx or torch.")] = "auto",
    ) -> None:
        """Animate sticker(s): image + prompt -> looping transparent animation (8 frames, or --frames)."""
        from ..export.presets import get_preset
        from ..export.retime import check_fps
        from .jobs import plan_jobs
        from .params import MAX_SEED

        check_fps(fps)
        if batch_size < 1:
            raise UserError(f"--batch-size {batch_size}: expected 1 or more stickers per sampling call")
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise UserError(f"--seed {seed}: expected 0 to {MAX_SEED} (2**63 - 1)")
        if preset:
            fmt = get_preset(preset).suffix
        if frames_out and frames_out.exists() and not frames_out.is_dir():
            raise UserError(f"--frames-out '{frames_out}' is a file: expected a folder")
        pipe, params = _open_pipeline(engine, model, jit, threads, (
            seed, steps, image_guidance, text_guidance, guided_steps, scheduler, bf16, paste_input, frames,
            cond_frame, prompt_motion, render, room))
        jobs = plan_jobs(images or [], prompt or [], out, inputs, outputs, fmt, pipe.resolution, preset)
        batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
        bar = _Bar(len(batches) * params.steps, f"animating {len(jobs)} sticker(s)")
        folders = {j.out.parent for j in jobs} | ({frames_out} if frames_out else set())
        try:
            with _new_folders(folders):
                for batch in batches:
                    results = pipe.animate_stickers([j.sticker for j in batch], [j.prompt for j in batch], params,
                                                    bar.callback)
                    for job, frames in zip(batch, results):
                        written = _write(frames, job.out, fps, preset)
                        if frames_out:
                            _write_frames(frames, frames_out, job.stem)
                        bar.bar.write(f"wrote {written}")
        finally:
            bar.close()

    @app.command()
    @one_line_errors
    def generate(
        prompt: Annotated[str, Opt("--prompt", "-p", help="What the sticker shows and does.")],
        out: Annotated[Path, Opt("--out", "-o", help="Output animation (.webp .gif .png .webm).")],
        still_out: Annotated[Path | None, Opt(help="Also save the generated still sticker (PNG).")] = None,
        t2i_model: Annotated[Path | None, Opt(help="Text-to-image model folder (default weights/tiny-t2i).")] = None,
        model: Annotated[Path | None, Opt(help="Video model folder (default weights/tiny).")] = None,
        seed: Annotated[int | None, Opt(help="Noise seed for both stages.")] = None,
        steps: Annotated[int | None, Opt(help="Solver steps for both stages.")] = None,
        t2i_guidance: Annotated[float | None, Opt(help="Text guidance scale of the still.")] = None,
        image_guidance: Annotated[float | None, Opt(help="sigma_I of the animation.")] = None,
        text_guidance: Annotated[float | None, Opt(help="sigma_T of the animation.")] = None,
        fps: Annotated[float, Opt(help="Playback rate of the frames.")] = 8.0,
        preset: Annotated[str | None, Opt(help="Messenger preset instead of the --out suffix's format.")] = None,
        bf16: Annotated[bool, Opt(help="bfloat16 autocast.")] = False,
        threads: Annotated[int, Opt(help="torch threads (0 = all cores).")] = 0,
    ) -> None:
        """Text -> still sticker (text-to-image model) -> animated sticker: the factorised pipeline.

        Experimental: the text-to-image model had only 500 CPU training steps; its stills are rough colour blobs.
        """
        from ..checks import check_prompt
        from ..export.presets import get_preset
        from ..export.retime import check_fps
        from .jobs import check_out_file
        from .pipeline import AnimatePipeline, TextToImagePipeline, check_params, with_overrides
        from .preprocess import prepare_sticker

        text = check_prompt(prompt)
        check_fps(fps)
        if preset:
            get_preset(preset)
        check_out_file(out, preset)
        speed = _speed(False, threads)
        t2i = TextToImagePipeline.from_dir(t2i_model, speed)
        video = AnimatePipeline.from_dir(model, speed)
        still_params = check_params(with_overrides(t2i.model.sampling, seed=seed, steps=steps,
                                                   text_guidance=t2i_guidance, dtype="bfloat16" if bf16 else None))
        params = _params(video, seed, steps, image_guidance, text_guidance, None, None, bf16)
        bar = _Bar(still_params.steps + params.steps, "generating")
        try:
            still = t2i.generate([text], still_params, bar.callback)[0]
            if still_out:
                from ..export.formats import atomic_output

                with atomic_output(Path(still_out)) as tmp:
                    still.save(tmp, format="PNG")
            sticker = prepare_sticker(still, "generated still", video.model.cfg.resolution, key=False)
            frames = video.animate_stickers([sticker], [text], params, bar.callback)[0]
            written = _write(frames, out, fps, preset)
        finally:
            bar.close()
        typer.echo(f"wrote {written}")

    @app.command("compile")
    @one_line_errors
    def compile_(
        model: Annotated[Path | None, Opt(help="Video model folder (default weights/tiny).")] = None,
        steps: Annotated[int | None, Opt(help="Solver steps to compile (model default).")] = None,
        scheduler: Annotated[str | None, Opt(help=SCHEDULER_HELP)] = None,
        frames: Annotated[int | None, Opt("--frames", help="Frames per loop (model default).")] = None,
        force: Annotated[bool, Opt(help="Compile even when a current compile exists.")] = False,
    ) -> None:
        """Compile a model's default sampling to ONNX (MODEL/onnx/): `animate` then runs without torch."""
        from .onnx_pipeline import OnnxPipeline

        current = None if force else OnnxPipeline.open(model)
        if current is not None:
            params = _params(current, None, steps, None, None, None, scheduler, False, None, frames)
            if current.supports(params):
                typer.echo(f"{current.folder / 'onnx'} is current (use --force to compile again)")
                return
        from .onnx_export import compile_model

        compile_model(model, log=typer.echo, steps=steps, scheduler=scheduler, num_frames=frames)

    @app.command()
    @one_line_errors
    def bench(
        json_out: Annotated[bool, Opt("--json", help="Print one JSON object (otherwise a table).")] = False,
        model: Annotated[Path | None, Opt(help="Video model folder (default weights/tiny, else a random one).")] = None,
        random: Annotated[bool, Opt(help="Use a random tiny model (works without trained weights).")] = False,
        distilled: Annotated[Path | None, Opt(help="Distilled model folder for the 'distilled' slot.")] = None,
        repeats: Annotated[int, Opt(min=1, help="Timed repeats per measurement (median).")] = 1,
        batch: Annotated[int, Opt(min=1, help="Batch size of the per-sticker-at-batch measurement.")] = 4,
        configs: Annotated[str | None, Opt(help="Comma-separated subset: naive, dpm15, dpm15-adaptive, "
                                                "dpm15-adaptive-optimized, distilled.")] = None,
        threads: Annotated[int, Opt(help="torch threads (0 = all cores).")] = 0,
        save: Annotated[Path | None, Opt(help="Also write the JSON to this file.")] = None,
        resolutions: Annotated[str | None, Opt(help="Instead: the cost of native canvas sizes, e.g. 128,256 "
                                                    "(a training step and a sampled sticker each).")] = None,
        cold: Annotated[bool, Opt("--cold", help="Instead: a fresh `stickers animate` process end to end (cold "
                                                 "start) beside the same call warm.")] = False,
    ) -> None:
        """Benchmark naive vs DPM-Solver vs adaptive vs optimised sampling (paper 3.3.1)."""
        from .bench import format_table, run_bench

        if model is not None and random:
            raise UserError("give --model DIR or --random, not both")
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
                               only=configs.split(",") if configs else None, threads=threads or None)
            table = format_table
        text = json.dumps(result, indent=2)
        if save:
            from ..export.formats import atomic_output

            with atomic_output(Path(save)) as tmp:
                tmp.write_text(text + "\n")
        typer.echo(text if json_out else table(result))
