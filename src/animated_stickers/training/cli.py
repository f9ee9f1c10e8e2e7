"""`stickers train`: run a recipe's stages (resumable), optionally export the result as fp16."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UserError, one_line_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def train(
        recipe: str = typer.Option("tiny", help="Built-in recipe name (tiny, paper-example, smoke) or a YAML file."),
        stage: str = typer.Option(None, help="Run only this stage (default: every stage not yet done)."),
        run_dir: Path = typer.Option(None, help="Run folder (default: runs/<recipe>)."),
        data: list[Path] = typer.Option(
            [], "--data", help="A folder made by `stickers data prepare` (repeatable: Fluent, stills, procedural "
                               "motion, your own videos). Each stage mixes the sources it names by weight."),
        init: Path = typer.Option(None, help="Model folder to start the first stage of this call from."),
        max_steps: int = typer.Option(None, help="Stop after this many steps in this call (resume later)."),
        set_: list[str] = typer.Option([], "--set", help="Override every stage's field, e.g. --set batch_size=2."),
        export: Path = typer.Option(None, help="Also write the final stage's model here as fp16."),
        threads: int = typer.Option(0, help="torch threads (0 = all cores)."),
        snapshot: Path = typer.Option(None, help="Do not train: export --stage's latest checkpoint (EMA "
                                                 "weights) as a model folder here, e.g. to sample while it trains."),
    ) -> None:
        """Train a recipe: VAE -> text-to-image -> inflate -> video stages (paper 3.1)."""
        import torch

        from ..models.checkpoint import load_model, save_model
        from .recipes import get_recipe
        from .stages import run_recipe

        if threads:
            torch.set_num_threads(threads)
        r = get_recipe(recipe, set_)
        if export and r.stages[-1].kind == "motion":
            raise UserError("--export: motion recipes write their model folder to RUN/<stage>/model (no fp16 "
                            "export yet)")
        if not data:
            raise UserError("--data: expected at least one folder made by `stickers data prepare`")
        for d in data:
            if not d.is_dir():
                raise UserError(f"--data '{d}': no such folder; expected one made by `stickers data prepare`")
        if snapshot is not None:
            from .stages import snapshot_stage

            chosen = [s for s in r.stages if s.name == stage]
            if not chosen:
                raise UserError(f"--snapshot needs --stage: one of {', '.join(s.name for s in r.stages)}")
            out, step = snapshot_stage(r, chosen[0], run_dir or Path("runs") / r.name, data, snapshot, init)
            typer.echo(f"snapshot of stage '{stage}' at step {step} written to {out}")
            return
        done = run_recipe(r, run_dir or Path("runs") / r.name, data, stage, init, max_steps)
        for d in done:
            typer.echo(f"stage done: {d}")
        if export and done and done[-1].parent.name == r.stages[-1].name:
            from .card import write_model_card

            save_model(load_model(done[-1]), export, dtype=torch.float16)
            write_model_card(run_dir or Path("runs") / r.name, export, threads or torch.get_num_threads())
            typer.echo(f"exported fp16 model (with MODEL_CARD.md) to {export}")
