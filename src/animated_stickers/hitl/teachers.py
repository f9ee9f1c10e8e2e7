"""Teachers that differ only by recipe (paper 2.3, 3.1), and the student's recipe.

Every teacher is a short video finetune from the same starting model, on the same data, with the same
steps and learning rate; exactly one recipe knob differs (TEACHERS). The student (paper 2.3: trained on
the selected set) is the same finetune on the kept candidates (source "hitl") mixed with real clips.
Training runs through training/stages.py `run_recipe`, so a teacher is resumable like `stickers train`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import UserError
from .inputs import read_json_file

HITL_SOURCE = "hitl"  # the prepared source name of kept candidates (finetune.py)
BASE_STAGE = {"name": "finetune", "kind": "video", "steps": 300, "lr": 5e-5, "batch_size": 4, "warmup": 20,
              "ema_decay": 0.995, "checkpoint_every": 50, "fps": "dynamic", "freeze_spatial": False,
              "prediction_type": "v_prediction", "target": "residual", "cond_frame": "middle",
              # The default's own data and clip rule (Fluent clips, the paper's spacing rule). Measured from the
              # default, 150 steps: with half as many procedural clips mixed in (large rigid motions) the
              # frames far from the conditioning frame broke into colour blobs on unseen stickers, with or
              # without whole-loop clips (8 frames over a 2-3 s Fluent loop, ~3 fps); Fluent alone did not.
              "data": {"fluent-anim": 1.0}, "loops": False}
# name -> the one knob it changes (paper 3.1: fps policy, frozen spatial layers, eps vs v, frames vs residual).
TEACHERS: dict[str, dict] = {
    "dynamic-v": {},  # the default's own recipe, continued
    "frozen-8fps": {"freeze_spatial": True, "fps": "8"},
    "eps-4fps": {"prediction_type": "epsilon", "fps": "4"},
    "fixed-4fps": {"fps": "4"},
    "frames-target": {"target": "frames"},
}
# Three knobs a short CPU finetune of the v-prediction default can take: the fps policy (motion buckets,
# 8 fps with the spatial layers frozen, 4 fps). eps-4fps and frames-target change what the network
# predicts, which 300 steps from a v/residual model do not relearn (their candidates are noise).
DEFAULT_TEACHERS = ("dynamic-v", "frozen-8fps", "fixed-4fps")
STUDENT_DATA = {HITL_SOURCE: 2.0, "fluent-anim": 1.0}  # kept candidates mixed with real clips
TEACHER_FILE = "teacher.json"


def teacher_recipe(name: str, steps: int | None = None, **stage: object) -> dict:
    """The recipe (as `get_recipe` data) of teacher `name`: BASE_STAGE plus its knob."""
    if name not in TEACHERS:
        raise UserError(f"--teacher {name}: expected one of {', '.join(TEACHERS)}")
    s = {**BASE_STAGE, **TEACHERS[name], **stage}
    if steps is not None:
        s["steps"] = steps
    return {"name": f"hitl-teacher-{name}", "stages": [s]}


def student_recipe(steps: int | None = None, data: dict | None = None, **stage: object) -> dict:
    """The student's recipe: the base finetune on kept candidates mixed with real data."""
    s = {**BASE_STAGE, "data": dict(data or STUDENT_DATA), **stage}
    if steps is not None:
        s["steps"] = steps
    return {"name": "hitl-student", "stages": [s]}


def write_recipe(data: dict, path: Path) -> Path:
    """A recipe as the YAML file `stickers train --recipe FILE` reads (YAML, not JSON: YAML 1.1 reads the
    JSON number 5e-05 as a string)."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return path


def train_recipe(recipe_data: dict, run_dir: Path, data: list[Path], init: Path,
                 max_steps: int | None = None, overrides: list[str] | None = None) -> Path | None:
    """Run a one-stage recipe from `init` (resumable); the finished model folder, or None if cut short."""
    from ..training.recipes import get_recipe
    from ..training.stages import run_recipe

    for d in data:
        if not Path(d).is_dir():
            raise UserError(f"--data {d}: no such folder; expected one made by `stickers data prepare`")
    if not (Path(init) / "config.json").is_file():
        raise UserError(f"--init {init}: not a model folder (no config.json)")
    from ..models.checkpoint import read_config

    # The stages work at the starting model's canvas size: a finetune never changes it.
    size = read_config(Path(init))["model"]["resolution"]
    recipe_data = {**recipe_data, "stages": [{"resolution": size, **s} for s in recipe_data["stages"]]}
    path = write_recipe(recipe_data, run_dir / "recipe-input.yaml")
    recipe = get_recipe(str(path), overrides)
    done = run_recipe(recipe, run_dir, list(data), init=Path(init), max_steps=max_steps)
    return done[-1] if len(done) == len(recipe.stages) else None


def share_banks(run_dir: Path, shared: Path) -> None:
    """Point RUN/banks at a shared latent cache (kept by data, size and VAE), unless the run has its own."""
    if not (run_dir / "banks").exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "banks").symlink_to(shared.resolve(), target_is_directory=True)


def train_teachers(out: Path, names: list[str], data: list[Path], init: Path, steps: int | None = None,
                   max_steps: int | None = None, overrides: list[str] | None = None) -> dict[str, Path | None]:
    """Train (or resume) each teacher under out/<name>; a finished one gets out/<name>/teacher.json."""
    result = {}
    shared = out / ".banks"  # latent caches are keyed by data, size and VAE: every teacher can reuse them
    shared.mkdir(parents=True, exist_ok=True)
    for name in names:
        run_dir = out / name
        run_dir.mkdir(exist_ok=True)
        share_banks(run_dir, shared)
        model = train_recipe(teacher_recipe(name, steps), run_dir, data, init, max_steps, overrides)
        if model is not None:
            atomic_write_text(run_dir / TEACHER_FILE, json.dumps(
                {"name": name, "model": str(model.resolve()), "recipe": teacher_recipe(name, steps),
                 "overrides": list(overrides or []), "init": str(Path(init).resolve())}, indent=2) + "\n")
        result[name] = model
    return result


def find_models(teachers: Path | None, extra: list[str]) -> dict[str, Path]:
    """name -> model folder: every finished teacher under `teachers` plus NAME=DIR entries of `extra`."""
    models: dict[str, Path] = {}
    if teachers is not None:
        if not teachers.is_dir():
            raise UserError(f"--teachers {teachers}: not a folder; expected the --out of `stickers hitl teachers`")
        for f in sorted(teachers.glob(f"*/{TEACHER_FILE}")):
            meta = read_json_file(f, "the file written by `stickers hitl teachers`")
            if not (isinstance(meta.get("name"), str) and isinstance(meta.get("model"), str)):
                raise UserError(f"'{f}': expected 'name' and 'model', as written by `stickers hitl teachers`")
            models[meta["name"]] = Path(meta["model"])
    for spec in extra:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--model {spec}: expected NAME=MODEL_DIR")
        if "@" in name or "/" in name:
            raise UserError(f"--model {spec}: the name may not contain '@' or '/'")
        models[name] = Path(path)
    for name, path in models.items():
        if not (path / "config.json").is_file():
            raise UserError(f"model {name!r}: {path} is not a model folder (no config.json)")
    if not models:
        raise UserError("no teachers: expected --teachers DIR with finished teachers, or --model NAME=DIR")
    return models
