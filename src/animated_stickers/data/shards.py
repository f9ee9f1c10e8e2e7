"""Prepare WebDataset tar shards + a manifest from source items (resumable, parallel, never aborted by bad files).

Three steps, each resumable:
  1. analyse: decode and validate every item and score its motion -> one JSON line per item in
     `work/analysis.jsonl` (appended as results arrive, so a killed run resumes where it stopped; bad or
     truncated files become 'error' lines with a one-line reason and are reported, never raised);
  2. buckets: fit the motion buckets on the training animations (or take a given table) -> buckets.json;
  3. shards: `<kind>-<split>-NNNNNN.tar` with, per sample, the original file bytes (`KEY.webp`, `KEY.mp4`...)
     and `KEY.json` metadata (caption, keywords, fps, n_frames, motion scores, bucket fps, source, license,
     split); a shard whose content is unchanged is not rewritten. Then manifest.jsonl, errors.jsonl and
     summary.json.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, atomic_write_bytes, atomic_write_text
from ..errors import UserError
from .animation import decode_animation
from .buckets import DEFAULT_FPS, MotionBuckets
from .clips import constant_rate_steps
from .sources import Item, item_split

SCHEMA = 2  # 2: loop_period, measured motion, subject; procedural_motion (was motion)
PROCEDURAL_FRAMES = 24  # a procedural loop: 24 frames at motion.procedural.FPS
ANALYSIS = "work/analysis.jsonl"
GENERATED = "work/generated"
SPECTRAL_DIR = "work/spectral"


@dataclass
class PrepareOptions:
    """Knobs of `prepare`; the defaults suit the Fluent set."""

    shard_size: int = 100  # samples per shard (~35 MB of Fluent WebPs)
    workers: int = 1  # processes; 1 analyses in this process
    with_mv: bool = True  # compute the H.264 motion-vector score too
    bucket_fps: tuple[float, ...] = DEFAULT_FPS
    bucket_score: str = "mv"
    bucket_table: list[tuple[float, float]] | None = None  # [(lower score bound, fps), ...] instead of fitting
    procedural_size: int = 256
    retry_errors: bool = False  # re-analyse items that failed in an earlier run
    progress: bool = True
    # The learned motion model's targets (data/motion.py spectral_targets): per looping clip, spectral
    # volumes relative to `motion_phases` conditioning phases drawn at random, as a KEY.spectral.safetensors
    # part. Off by default: shards prepared without it are unchanged.
    motion_targets: bool = False
    motion_phases: int = 4


@dataclass
class PrepareReport:
    """What a `prepare` run did."""

    out: Path
    ok: int = 0
    skipped: int = 0
    errors: int = 0
    analysed_now: int = 0
    shards_written: int = 0
    shards_kept: int = 0
    seconds: float = 0.0
    error_lines: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- step 1: analyse one item (in a worker)

def _one_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:300]


def _encode_webp(frames: np.ndarray, fps: float) -> bytes:
    """Lossy animated WebP with exact alpha (FACTS: quality 90 + alpha_quality 100), looping forever."""
    from PIL import Image

    images = [Image.fromarray(f, "RGBA") for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="WEBP", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0, quality=90, alpha_quality=100, method=4)
    return buf.getvalue()


def describe(rec: dict) -> dict:
    """Caption, label, keywords, base and split of an analysed record (cheap: done when shards are written).

    Code-point names get the emoji table's caption; a given caption wins; procedural motions are named.
    """
    from ..motion.procedural import MOTIONS, motion_caption
    from .captions import CaptionError, caption_for, is_codepoint_stem

    name, given, motion = rec["name"], rec.get("given_caption"), rec.get("procedural_motion")
    cap = None
    if is_codepoint_stem(name):
        try:
            cap = caption_for(name)
        except CaptionError:
            cap = None
    text = given or (cap.text if cap else "")
    label = given or (cap.label if cap else "")
    keywords = list(cap.keywords) if cap else []
    subject = text
    if motion:
        label = label or name
        subject = label
        text = motion_caption(label, motion, rec.get("procedural_seed", 0), rec.get("procedural_frames", 8),
                              rec.get("fps", 12.0))
        keywords += [motion, MOTIONS[motion].phrase]
    source = "given" if given else cap.source if cap else "none"
    return {"caption": text, "subject": subject, "label": label, "keywords": keywords,
            "base": cap.base if cap else None,
            "caption_source": source, "split": item_split(rec)}


def analyse_item(item: Item, out: str, with_mv: bool = True, procedural_size: int = 256,
                 motion_phases: int = 0) -> dict:
    """Decode, validate and score one item; returns a record with status ok / skipped / error.
    `motion_phases` > 0 also stores the clip's spectral motion targets (`_spectral`)."""
    from ..keying import ensure_alpha, has_alpha
    from .motion import motion_scores

    rec = {"key": item.key, "source": item.source, "license": item.license, "kind": item.kind,
           "path": item.path, "name": item.name, "given_caption": item.caption,
           "procedural_motion": item.motion}
    try:
        data = Path(item.path).read_bytes()
        suffix = Path(item.path).suffix.lower()
        anim = decode_animation(data, suffix)
        if item.motion:  # procedural: animate the still, keep the generated file as the sample's bytes
            from ..motion.procedural import FPS, animate_still

            generated = animate_still(anim.frames[0], item.motion, size=procedural_size, seed=0,
                                      num_frames=PROCEDURAL_FRAMES)
            rec.update(procedural_seed=0, procedural_frames=PROCEDURAL_FRAMES)
            data, suffix = _encode_webp(generated, FPS), ".webp"
            gen = Path(out) / GENERATED / f"{item.key}.webp"
            gen.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(gen, data)
            rec["path"] = str(gen)
            rec["still_path"] = item.path
            anim = decode_animation(data, suffix)  # what is stored (the encoder merges repeated frames)
        if item.kind == "animated" and anim.num_frames < 2:
            return {**rec, "status": "skipped", "reason": "single frame (a still, not an animation)"}
        # Clips are planned on a constant-rate grid of steps (see clips.constant_rate_steps).
        fps, steps = constant_rate_steps(anim.durations_ms)
        fps_guessed = not any(d > 0 for d in anim.durations_ms)
        frames = anim.frames[steps]
        n = len(steps)
        if steps != list(range(anim.num_frames)):
            rec["step_frames"] = steps
        key_color = None
        alpha = has_alpha(frames)
        if not alpha and item.source == "user":
            frames, info = ensure_alpha(frames)
            key_color = list(info.color) if info else None
        rec.update({
            "status": "ok", "ext": suffix.lstrip("."), "bytes": len(data),
            "sha1": hashlib.sha1(data).hexdigest(), "n_frames": n, "n_source_frames": anim.num_frames,
            "fps": round(fps, 4), "fps_guessed": fps_guessed,
            "duration_s": round(n / fps, 4), "width": int(frames.shape[2]), "height": int(frames.shape[1]),
            "has_alpha": alpha, "key_color": key_color,
        })
        if n >= 2:
            rec["scores"] = motion_scores(frames, fps, with_mv=with_mv).to_dict()
            rec.update(measure_clip(frames, fps))
            if motion_phases:
                exact = (generated[0][..., 3], item.motion, PROCEDURAL_FRAMES) if item.motion else None
                rec["spectral"] = _spectral(frames, rec, out, motion_phases, exact)
        else:
            rec["scores"] = None
        return rec
    except Exception as e:  # noqa: BLE001 -- a bad file never aborts a long run: it becomes an error line
        return {**rec, "status": "error", "reason": f"{type(e).__name__}: {_one_line(e)}"}


def _spectral(frames: np.ndarray, rec: dict, out: str, phases: int, exact: tuple | None = None) -> dict | None:
    """Write the clip's spectral volumes under work/spectral/ and describe them (None for clips that do not
    loop: a spectral volume is a loop's motion). `exact` = (canvas alpha, motion, frames) of a procedural
    clip: its target comes from the generator's own warp, relative to the still (frame 0)."""
    from .motion import procedural_spectral_target, spectral_bytes, spectral_targets

    if not rec.get("loop_period"):
        return None
    if exact is not None:
        alpha, motion, num_frames = exact
        volumes, info = procedural_spectral_target(alpha, motion, rec.get("procedural_seed", 0), num_frames,
                                                   rec["loop_period"])
    else:
        volumes, info = spectral_targets(frames, rec["loop_period"], rec["key"], phases)
    data = spectral_bytes(volumes)
    path = Path(out) / SPECTRAL_DIR / f"{rec['key']}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return {**info, "path": str(path), "sha1": hashlib.sha1(data).hexdigest()}


def measure_clip(frames: np.ndarray, fps: float) -> dict:
    """Loop period (frames, None when the animation does not loop seamlessly) and the measured motion
    of the canonical clip training sees (NUM_FRAMES frames over one loop, or the spacing rule)."""
    from ..config import cond_index
    from ..motion.words import describe_motion, motion_words
    from .clips import NUM_FRAMES, loop_period, plan_clip, plan_loop_clip

    period = loop_period(frames)
    plan = plan_loop_clip(len(frames), period, fps, start=0) if period else \
        plan_clip(len(frames), fps, 8.0, num_frames=NUM_FRAMES)
    clip = frames[list(plan.indices)]
    desc = describe_motion(clip, plan.fps, cond_index=cond_index(NUM_FRAMES))
    return {"loop_period": period, "motion": desc.to_dict(), "motion_words": motion_words(desc)}


def _analyse_star(args) -> dict:
    return analyse_item(*args)


# ---------------------------------------------------------------- step 1: run over all items (resumable)

def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSON-lines file; a torn last line (killed run) is ignored."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file", disable=not enabled, dynamic_ncols=True)


def analyse_all(items: list[Item], out: Path, opts: PrepareOptions) -> tuple[dict[str, dict], int]:
    """Analyse the items not yet in work/analysis.jsonl; returns {key: record} and how many ran now."""
    log = out / ANALYSIS
    log.parent.mkdir(parents=True, exist_ok=True)
    done = {r["key"]: r for r in read_jsonl(log)}
    if opts.retry_errors:
        done = {k: r for k, r in done.items() if r.get("status") != "error"}
    if opts.motion_targets:  # clips analysed before motion targets were asked for: analyse them again
        done = {k: r for k, r in done.items() if r.get("status") != "ok" or (r.get("n_frames") or 0) < 2
                or "spectral" in r}
    todo = [it for it in items if it.key not in done]
    phases = opts.motion_phases if opts.motion_targets else 0
    args = [(it, str(out), opts.with_mv, opts.procedural_size, phases) for it in todo]
    with log.open("a", encoding="utf-8") as fh, _progress(len(todo), "analyse", opts.progress) as bar:
        def record(rec: dict) -> None:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()  # each finished item survives a kill
            done[rec["key"]] = rec
            bar.update(1)

        if opts.workers <= 1:
            for a in args:
                record(analyse_item(*a))
        else:
            _run_pool(args, opts.workers, record)
    return done, len(todo)


def _run_pool(args: list[tuple], workers: int, record) -> None:
    """Analyse in `workers` processes; a crashed worker (e.g. a decoder segfault) fails only its items."""
    pending = list(args)
    while pending:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(_analyse_star, a): a for a in pending}
            pending = []
            for fut in cf.as_completed(futures):
                item = futures[fut][0]
                try:
                    record(fut.result())
                except cf.process.BrokenProcessPool:
                    pending.append(futures[fut])
                except Exception as e:  # noqa: BLE001 -- one failed item must not stop the others
                    record({**item.to_dict(), "status": "error", "reason": f"{type(e).__name__}: {_one_line(e)}"})
        if pending:  # the pool broke: run the unfinished items one by one so the culprit is isolated
            for a in pending:
                with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init) as single:
                    try:
                        record(single.submit(_analyse_star, a).result())
                    except Exception as e:  # noqa: BLE001 -- isolate the crashing item, keep going
                        record({**a[0].to_dict(), "status": "error",
                                "reason": f"worker crashed ({type(e).__name__}: {_one_line(e)})"})
            pending = []


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# ---------------------------------------------------------------- steps 2-3: buckets, shards, manifest

def fit_buckets(records: Iterable[dict], opts: PrepareOptions) -> MotionBuckets:
    """Buckets from the given table, else fitted on training animations' scores."""
    if opts.bucket_table:
        return MotionBuckets.from_table(opts.bucket_table, score=opts.bucket_score)

    scores = [r["scores"][opts.bucket_score] for r in records
              if r.get("kind") == "animated" and item_split(r) == "train" and r.get("scores")
              and r["scores"].get(opts.bucket_score) is not None]
    if not scores:  # e.g. only held-out or stills: fall back to every scored record
        scores = [r["scores"][opts.bucket_score] for r in records
                  if r.get("scores") and r["scores"].get(opts.bucket_score) is not None]
    if not scores:
        return MotionBuckets.from_table([(0.0, opts.bucket_fps[len(opts.bucket_fps) // 2])], opts.bucket_score)
    buckets = MotionBuckets.fit(scores, fps=opts.bucket_fps, score=opts.bucket_score)
    return buckets


def _shard_order(key: str) -> str:
    # Pseudo-random but fixed order inside a split, so one emoji's skin tones spread over shards.
    return hashlib.sha1(key.encode()).hexdigest()


def plan_shards(records: list[dict], shard_size: int) -> dict[str, list[dict]]:
    """{shard file name: records}: grouped by kind and split, fixed pseudo-random order, `shard_size` each."""

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["kind"], item_split(r)), []).append(r)
    plan = {}
    for (kind, split), rows in sorted(groups.items()):
        rows.sort(key=lambda r: _shard_order(r["key"]))
        for i in range(0, len(rows), shard_size):
            plan[f"{kind}-{split}-{i // shard_size:06d}.tar"] = rows[i:i + shard_size]
    return plan


def sample_metadata(rec: dict, buckets: MotionBuckets) -> dict:
    """The JSON stored next to a sample's bytes in its shard."""
    score = (rec.get("scores") or {}).get(buckets.score)
    meta = {k: v for k, v in rec.items() if k not in ("status",) and not (k == "spectral" and v is None)}
    meta.update(describe(rec))
    meta["schema"] = SCHEMA
    meta["bucket"] = buckets.bucket_of(score) if score is not None else None
    meta["bucket_fps"] = buckets.fps_for(score) if rec["kind"] == "animated" else None
    return meta


def write_shard(path: Path, metas: list[dict]) -> None:
    """Write one tar atomically: per sample KEY.<ext> (original bytes) and KEY.json."""
    import webdataset as wds

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        writer = wds.TarWriter(fh, mtime=0.0)
        for meta in metas:
            data = Path(meta["path"]).read_bytes()
            if hashlib.sha1(data).hexdigest() != meta["sha1"]:
                raise UserError(f"'{meta['path']}' changed since it was analysed; re-run with a fresh work dir")
            sample = {"__key__": meta["key"], meta["ext"]: data,
                      "json": json.dumps(meta, ensure_ascii=False).encode("utf-8")}
            if meta.get("spectral"):  # the motion model's target (PrepareOptions.motion_targets)
                from .motion import SPECTRAL_EXT

                blob = Path(meta["spectral"]["path"]).read_bytes()
                if hashlib.sha1(blob).hexdigest() != meta["spectral"]["sha1"]:
                    raise UserError(f"'{meta['spectral']['path']}' changed since it was analysed; "
                                    "re-run with a fresh work dir")
                sample[SPECTRAL_EXT] = blob
            writer.write(sample)
        writer.close()


def _write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False))


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def prepare(items: list[Item], out: str | Path, opts: PrepareOptions | None = None) -> PrepareReport:
    """Analyse `items`, fit buckets and write shards + manifest.jsonl + errors.jsonl + summary.json under `out`."""
    opts = opts or PrepareOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    from .unseen import assert_not_training_source

    for it in items:
        assert_not_training_source(it)  # Twemoji / Noto are unseen-style test sets, never prepared
    keys = [it.key for it in items]
    dup = next((k for k, n in Counter(keys).items() if n > 1), None)
    if dup:
        raise UserError(f"duplicate sample key '{dup}': two sources name the same file")
    analysed, n_now = analyse_all(items, out, opts)
    wanted = set(keys)
    records = [analysed[k] for k in keys if k in analysed]
    ok = [r for r in records if r["status"] == "ok" and r.get("key") in wanted]
    bad = [r for r in records if r["status"] != "ok"]
    buckets = fit_buckets(ok, opts)
    buckets.save(out / "buckets.json")

    plan = plan_shards(ok, opts.shard_size)
    report = PrepareReport(out=out, analysed_now=n_now)
    manifest = []
    for old in out.glob("*.tar"):
        if old.name not in plan:  # the plan changed (e.g. a smaller item list): drop stale shards
            old.unlink()
            old.with_suffix(".tar.sig").unlink(missing_ok=True)
    for name, rows in _iter_progress(plan.items(), "shards", opts.progress):
        metas = [sample_metadata(r, buckets) for r in rows]
        for m in metas:
            m["shard"] = name
        sig = hashlib.sha1(json.dumps(metas, sort_keys=True).encode()).hexdigest()
        sig_file = out / (name + ".sig")
        if (out / name).is_file() and sig_file.is_file() and sig_file.read_text() == sig:
            report.shards_kept += 1
        else:
            write_shard(out / name, metas)
            atomic_write_text(sig_file, sig)
            report.shards_written += 1
        manifest.extend(metas)
    _write_jsonl(out / "manifest.jsonl", manifest)
    _write_jsonl(out / "errors.jsonl", bad)
    report.ok = len(ok)
    report.skipped = sum(r["status"] == "skipped" for r in bad)
    report.errors = sum(r["status"] == "error" for r in bad)
    report.error_lines = [f"{r['path']}: {r['reason']}" for r in bad if r["status"] == "error"]
    report.seconds = time.time() - t0
    _write_json(out / "summary.json", {
        "schema": SCHEMA, "samples": report.ok, "skipped": report.skipped, "errors": report.errors,
        "shards": sorted(plan), "buckets": buckets.to_dict(), "analysed_now": n_now,
        "seconds_this_run": round(report.seconds, 1),
        "options": {"shard_size": opts.shard_size, "workers": opts.workers, "with_mv": opts.with_mv,
                    "bucket_score": opts.bucket_score, "bucket_fps": list(opts.bucket_fps),
                    **({"motion_phases": opts.motion_phases} if opts.motion_targets else {})},
    })
    return report


def _iter_progress(iterable, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(list(iterable), desc=desc, unit="shard", disable=not enabled, dynamic_ncols=True)
