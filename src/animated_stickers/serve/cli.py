"""`stickers serve` (the HTTP API + web page) and `stickers serve-bench` (loopback load benchmark)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError, one_line_errors
from .settings import HEADER_TIMEOUT_S, ServeSettings


def _settings(max_batch: int, max_wait_ms: float, queue_size: int, timeout_s: float,
              max_upload_mb: float) -> ServeSettings:
    try:
        return ServeSettings(max_batch=max_batch, max_wait_ms=max_wait_ms, queue_size=queue_size,
                             request_timeout_s=timeout_s,
                             max_upload_bytes=int(max_upload_mb * 1024 * 1024)).validate()
    except ValueError as e:
        raise UserError(f"bad server option: {e}") from None


def register(app: typer.Typer) -> None:
    """Add the `serve` and `serve-bench` commands."""

    @app.command("serve")
    @one_line_errors
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
        model: Annotated[Path | None, typer.Option(help="Video model folder for the video path (default: "
                                                        "weights/tiny).")] = None,
        path: Annotated[str | None, typer.Option("--path", help="motion (the learned motion model; the default "
                                                 "when weights/motion exists) or video (the paper's latent video "
                                                 "model).")] = None,
        motion_model: Annotated[Path | None, typer.Option(help="Motion model folder for the motion path (default: "
                                                               "weights/motion).")] = None,
        t2i: Annotated[Path | None, typer.Option(help="Text-to-image model folder for /v1/generate "
                                                      "(default: weights/tiny-t2i if present).")] = None,
        random_tiny: Annotated[bool, typer.Option("--random-tiny", help="Random tiny models.")] = False,
        max_batch: Annotated[int, typer.Option(min=1, help="N: most requests per sampling call.")] = 4,
        max_wait_ms: Annotated[float, typer.Option(min=0, help="M: wait for others to join.")] = 50.0,
        queue_size: Annotated[int, typer.Option(min=1, help="Waiting requests; more get 503.")] = 32,
        timeout_s: Annotated[float, typer.Option(min=0.1, help="Per-request timeout.")] = 300.0,
        max_upload_mb: Annotated[float, typer.Option(min=0.01, help="Largest image upload.")] = 8.0,
        header_timeout_s: Annotated[float, typer.Option(min=0.1, max=3600, help="Drop a connection whose "
                                                        "request line and headers take longer than this.")]
        = HEADER_TIMEOUT_S,
        bench: Annotated[bool, typer.Option("--bench", help="Run serve-bench instead.")] = False,
    ) -> None:
        """Serve the HTTP API (/v1/animate, /docs) and the web page (/) with micro-batching."""
        if bench:
            _bench(model, random_tiny, steps=None, rounds=2, max_batch=16, max_wait_ms=max_wait_ms,
                   out=None)
            return
        import uvicorn

        from ..sampling.paths import choose_path
        from .app import create_app
        from .bodylimit import uvicorn_limits
        from .loading import load_generator, load_pipeline

        settings = _settings(max_batch, max_wait_ms, queue_size, timeout_s, max_upload_mb)
        path, note = ("video", None) if random_tiny and path is None else choose_path(path, model, motion_model)
        # Loaded here, once, before uvicorn starts: a bad folder is one line and exit 2, not a traceback.
        pipeline = load_pipeline(model, random_tiny, path, motion_model)
        generator = load_generator(t2i, random_tiny)
        if note:
            typer.echo(note, err=True)
        typer.echo(f"serving on http://{host}:{port}  (page: /, docs: /docs; text-to-image: "
                   f"{'on' if generator else 'off'})", err=True)
        uvicorn.run(create_app(pipeline, settings, generator=generator), host=host, port=port,
                    log_level="info", limit_concurrency=4 * queue_size + 16, **uvicorn_limits(header_timeout_s))

    @app.command("serve-bench")
    @one_line_errors
    def serve_bench(
        model: Annotated[Path | None, typer.Option(help="Model folder (default: weights/tiny).")] = None,
        random_tiny: Annotated[bool, typer.Option("--random-tiny", help="Random tiny model.")] = False,
        steps: Annotated[int | None, typer.Option(min=1, help="Steps per request (model default).")] = None,
        rounds: Annotated[int, typer.Option(min=1, help="Requests per client per level.")] = 2,
        max_batch: Annotated[int, typer.Option(min=2, help="N of the batched server.")] = 16,
        max_wait_ms: Annotated[float, typer.Option(min=0, help="M of the batched server.")] = 20.0,
        out: Annotated[Path | None, typer.Option(help="Also write the JSON result here.")] = None,
    ) -> None:
        """Throughput at concurrency 1/4/16 on loopback, micro-batching vs max-batch 1; prints JSON."""
        _bench(model, random_tiny, steps, rounds, max_batch, max_wait_ms, out)


def _bench(model: Path | None, random_tiny: bool, steps: int | None, rounds: int, max_batch: int,
           max_wait_ms: float, out: Path | None) -> None:
    from .loadbench import run_benchmark
    from .loading import load_pipeline

    pipeline = load_pipeline(model, random_tiny)
    result = run_benchmark(pipeline, steps=steps, rounds=rounds, max_batch=max_batch, max_wait_ms=max_wait_ms,
                           model_label="random tiny" if random_tiny else str(model or "weights/tiny"))
    text = json.dumps(result, indent=2)
    typer.echo(text)
    if out:
        from ..atomic import atomic_write_text

        atomic_write_text(out, text + "\n")
