"""Write a model card (MODEL_CARD.md) for an exported model from its run folder's own records."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text


def _stage_rows(run_dir: Path, stages: list[dict], last_step: int | None = None, threads: int = 1) -> list[dict]:
    """One row per stage with metrics; the last stage's logs stop at `last_step` (a snapshot's step);
    `threads` counts for log rows that do not record their own."""
    rows = []
    for i, s in enumerate(stages):
        path = run_dir / s["name"] / "metrics.jsonl"
        if not path.is_file():
            continue
        logs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        if last_step is not None and i == len(stages) - 1:
            logs = [r for r in logs if r["step"] <= last_step]
        # elapsed_s restarts at 0 whenever a stage resumes: sum the segments, each x its torch threads.
        seconds, prev = 0.0, 0.0
        for r in logs:
            wall = r["elapsed_s"] - prev if r["elapsed_s"] >= prev else r["elapsed_s"]
            seconds += wall * r.get("threads", threads)
            prev = r["elapsed_s"]
        first, last = logs[0], logs[-1]
        curve = [logs[int(i * (len(logs) - 1) / 4)]["loss"] for i in range(5)]
        rows.append({"stage": s["name"], "kind": s["kind"], "steps": last["step"], "batch": s["batch_size"],
                     "fps": s["fps"], "freeze_spatial": s["freeze_spatial"], "data": s["data"],
                     "target": s.get("target", "frames") if s["kind"] == "video" else "-",
                     "loss_first": first["loss"], "loss_last": last["loss"], "curve": curve,
                     "cpu_hours": seconds / 3600})
    return rows


def write_model_card(run_dir: Path, out_dir: Path, threads: int, extra: str = "", upto: str | None = None) -> Path:
    """MODEL_CARD.md from RUN/recipe.json and each stage's metrics.jsonl (stages up to `upto`, default all);
    `threads`: torch threads of log rows that do not record theirs; `extra` is appended verbatim."""
    recipe = json.loads((run_dir / "recipe.json").read_text())
    if upto:
        names = [s["name"] for s in recipe["stages"]]
        recipe["stages"] = recipe["stages"][: names.index(upto) + 1]
    config = json.loads((out_dir / "config.json").read_text())
    snapshot = config.get("snapshot_step")  # exported by `stickers train --snapshot` mid-stage
    rows = _stage_rows(run_dir, recipe["stages"], snapshot, threads)
    lines = [
        f"# Model card: {out_dir.name}",
        "",
        f"Recipe `{recipe['name']}` (preset `{recipe['preset']}`), trained on a CPU; weights stored as fp16 "
        "safetensors.",
        "",
        f"- Canvas {config['model']['resolution']} px, {config['model']['num_frames']} frames, conditioning frame "
        f"index {config['model']['cond_frame']}; latents {config['model']['vae']['latent_channels']} channels; "
        f"prediction `{config['model']['prediction_type']}`, zero-terminal SNR "
        f"{config['model']['zero_terminal_snr']}.",
        "- Data: prepared shards (`stickers data prepare`, `stickers train --data`), train split only "
        "(`data/splits.py`: 10% of base emoji held out; the Fluent high-contrast style held out whole); sources per "
        "stage in the table (fluent-anim: Microsoft Fluent animated emoji, npm @lobehub/fluent-emoji-anim-1..4, "
        "MIT; procedural: procedural motion of stills with exact captions, `motion/procedural.py`).",
        "",
        "| stage | kind | steps | batch | fps | frozen spatial | target | data | loss first -> last "
        "| loss curve (5 points) | CPU-hours |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        curve = " ".join(f"{v:.3f}" for v in r["curve"])
        lines.append(f"| {r['stage']} | {r['kind']} | {r['steps']} | {r['batch']} | {r['fps']} | "
                     f"{r['freeze_spatial']} | {r['target']} | {r['data']} | "
                     f"{r['loss_first']:.3f} -> {r['loss_last']:.3f} | "
                     f"{curve} | {r['cpu_hours']:.2f} |")
    if snapshot is not None:
        lines += ["", f"These weights are the EMA of stage `{recipe['stages'][-1]['name']}` at step {snapshot} "
                      f"of {recipe['stages'][-1]['steps']} (`stickers train --snapshot`); the table stops there."]
    total = sum(r["cpu_hours"] for r in rows)
    lines += ["", f"Total: {total:.2f} CPU-hours (wall hours x torch threads, summed over resumed runs).", ""]
    if extra:
        lines += [extra.rstrip(), ""]
    path = out_dir / "MODEL_CARD.md"
    return atomic_write_text(path, "\n".join(lines))
