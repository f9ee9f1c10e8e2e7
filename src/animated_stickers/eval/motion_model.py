"""`stickers eval motion-model`: the learned motion model against issue 28's "Done means", in one run.

Every result is the model's spectral volume (sampling/motion_model.py `motion_volume`) rendered on the
sticker by the product's own render (`render_motion`: frame 0 is the still, a seamless loop of
`fps * seconds` frames), then measured with the motion criteria of issue 26 (motionref.py). Measures:

1. **Held-out Fluent emoji** (the heldout split, one clip per base emoji as in motion_calibrate.py), the
   prompt the emoji's name only (realclips.prompt_for). The still is the artist's frame at a per-name
   phase (name_hash, as motion_calibrate.load_window); each result is compared with the artist's clip
   around that frame: motion_size, motion_where, motion_parts and whether all three pass their bands
   (thresholds.json "motion"). Beside the model, measured the same way on the same stills:
     retrieval  the artist motion of the **training** emoji whose name embeds nearest (MiniLM, mean over
                the name's tokens, cosine): its first stored spectral volume (the training data's target,
                measured from one frame of its loop) rendered with the same render (issue 28's baseline);
     retrieval_consensus  the same emoji's consensus volume (its stored phases aligned and averaged in the
                canonical phase, motion/spectral.py consensus_volume: a canonical-phase model's target);
     chance     another held-out emoji's artist motion (half the list away, as motion_calibrate pairs
                them), measured from its own still (as artist_exact), rendered on this still, not rescaled;
     ceiling    the artist's own clip one second later (motion_calibrate's real_next);
     artist_exact  this emoji's own artist motion measured from this very still (16 frames of the loop
                from it, 4 harmonics at 64 px, motion/spectral.py volume_from_frames) through the same
                render: the limit of the field and the render themselves;
     artist_consensus  this emoji's consensus volume (its 4 stored phases, as the training targets of a
                canonical-phase model): what a model that reproduced its training target exactly would
                score on this still.
2. **Near-twins** (`near_twin`): a held-out emoji whose name has a training emoji name that is a
   near-twin. The rule (documented in the report): MiniLM cosine >= TWIN_COSINE, or the same words once
   skin tones and the words in TWIN_WORDS (man, woman, person, men, women, people, face) are dropped and
   the rest sorted ("man running" / "person running", "rabbit face" / "rabbit"). Every held-out figure is
   reported for all emoji and without the near-twins.
3. **Seeds**: for the first `seed_emoji` held-out emoji, `seeds` seeds each: the pairwise correlation of
   the results' speed maps (motionref.where_correlation, the map `motion_where` uses; a result with no
   motion counts 1.0, "the same") -- distinct when <= DISTINCT_BELOW -- and the share of seeds passing all
   three. An emoji meets the issue's bar when all its seeds pass and every pair is distinct.
4. **Unseen styles** (Twemoji, Noto, Fluent high-contrast; eval/axes.py load_stickers), the name alone:
   median motion size as a share of the alpha-box diagonal, the `motion_alone` record of eval/auto.py.
   The prompt is the emoji's CLDR name (`sticker_name`), never the caption's keywords.
5. **Prompts** on the same stickers: the four motions of motion_prompts.json and of the paraphrase test
   set (labelled.py), the share whose measured dominant motion is the labelled one
   (relevance.motion_agreement). The motion model reads the prompt only through its text encoder: no word
   table is involved on this path.
For the unseen styles the "near-twin" split is whether the emoji's name (same rule) is a training Fluent
emoji: the style is what is unseen there, not the emoji.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from .motionref import (
    MOTION_CRITERIA,
    MotionProfile,
    Reference,
    clip_profile,
    compare,
    reference_profile,
    where_correlation,
)

TWIN_COSINE = 0.9  # names at least this close (MiniLM, mean over tokens, cosine) are near-twins
TWIN_WORDS = frozenset({"man", "woman", "person", "men", "women", "people", "face"})
_SKIN_TONE = re.compile(r"\b(?:medium-light|medium-dark|light|medium|dark) skin tones?\b")
DISTINCT_BELOW = 0.9  # two seeds' motions are distinct when their speed maps correlate <= this
METHODS = ("model", "retrieval", "retrieval_consensus", "chance", "ceiling", "artist_exact", "artist_consensus")
SUBSETS = ("all", "without_near_twins")
NAME_ENCODER_LENGTH = 32

Progress = Callable[[Iterable, str], Iterable]


def _no_progress(it: Iterable, desc: str) -> Iterable:
    return it


# ---- names: embedding, retrieval and near-twins ----------------------------------------------------


class NameEmbedder:
    """Names -> unit vectors: MiniLM's last hidden states averaged over the name's own tokens (the padding
    masked out), L2-normalised, so a dot product is the cosine."""

    def __init__(self) -> None:
        from ..config import TextEncoderSpec
        from ..models.text import load_text_encoders

        self.encoder = load_text_encoders([TextEncoderSpec(kind="minilm", max_length=NAME_ENCODER_LENGTH)]).encoders[0]

    def __call__(self, names: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(names), 128):
                tok = self.encoder.tokenizer(list(names[i:i + 128]), padding=True, truncation=True,
                                             max_length=NAME_ENCODER_LENGTH, return_tensors="pt")
                h = self.encoder.model(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state
                m = tok.attention_mask[..., None].float()
                out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)


def twin_key(name: str) -> tuple[str, ...]:
    """The words of a name that decide a near-twin: lower case, skin tones and TWIN_WORDS dropped, sorted."""
    text = _SKIN_TONE.sub(" ", name.lower())
    words = re.findall(r"[a-z0-9][a-z0-9'’\-]*", text)
    return tuple(sorted(w for w in words if w not in TWIN_WORDS))


def near_twins(queries: Sequence[str], train: Sequence[str], similarity: np.ndarray) -> list[dict]:
    """Per query name: the nearest training name (by `similarity` (Q, N) cosines), and whether any training
    name is a near-twin (cosine >= TWIN_COSINE, or the same `twin_key`), with the twin and the rule."""
    keys: dict[tuple[str, ...], int] = {}
    for j, name in enumerate(train):
        keys.setdefault(twin_key(name), j)
    out = []
    for i, name in enumerate(queries):
        j = int(np.argmax(similarity[i])) if len(train) else -1
        cos = float(similarity[i, j]) if j >= 0 else None
        key = twin_key(name)
        if cos is not None and cos >= TWIN_COSINE:
            twin, by = train[j], "cosine"
        elif key and key in keys:
            twin, by = train[keys[key]], "name"
        else:
            twin, by = None, None
        out.append({"name": name, "nearest": train[j] if j >= 0 else None, "cosine": cos,
                    "near_twin": twin is not None, "twin": twin, "rule": by})
    return out


@dataclass
class MotionLibrary:
    """The training emoji's artist motions for the name-retrieval baseline: one per base emoji, its stored
    phases (P, 4K, s, s) in canvas units (each measured from one frame of the loop, data/motion.py
    spectral_targets), read when first asked for. `volume(j, "phase")` is the first stored phase as measured
    (a motion consistent with one real frame); `volume(j, "consensus")` the phases aligned and averaged in
    the canonical phase (motion/spectral.py consensus_volume: a canonical-phase model's training target)."""

    names: list[str]
    load: Callable[[int], np.ndarray]
    source: str
    _cache: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)

    def volume(self, j: int, kind: str = "phase") -> np.ndarray:
        from ..motion.spectral import consensus_volume

        if (j, kind) not in self._cache:
            phases = np.asarray(self.load(j), np.float32)
            self._cache[(j, kind)] = phases[0] if kind == "phase" else consensus_volume(phases)
        return self._cache[(j, kind)]


def library_from_bank(path: Path) -> MotionLibrary:
    """A cached training MotionBank (RUN/banks/motion-*.safetensors, training/motion_task.py): its names
    (one per base emoji, the variant with the shortest name, i.e. without a skin tone) and each clip's
    stored phases, read row by row (the bank's stills are never loaded)."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        metas = json.loads(f.metadata()["metas"])
    chosen: dict[str, dict] = {}
    for m in metas:
        base = m.get("base") or m.get("key") or m.get("label")
        if base not in chosen or len(m.get("label") or "") < len(chosen[base].get("label") or ""):
            chosen[base] = m
    picked = [m for m in chosen.values() if m.get("label")]

    def load(j: int) -> np.ndarray:
        m = picked[j]
        with safe_open(str(path), "np") as f:
            return f.get_slice("volumes")[m["start"]:m["start"] + m["count"]]

    return MotionLibrary([m["label"] for m in picked], load, f"training MotionBank {path}")


def stored_phases(frames: np.ndarray, key: str) -> np.ndarray:
    """An artist loop (T, H, W, 4) uint8 -> its stored phases (P, 4K, s, s) float16, exactly as the training
    targets are made (data/motion.py spectral_targets over the whole file as one loop)."""
    from ..data.motion import spectral_targets

    return spectral_targets(frames, len(frames), key)[0]


def exact_volume(frames: np.ndarray, cond: int) -> np.ndarray:
    """The artist loop's spectral volume measured from frame `cond`: LOOP_FRAMES frames evenly over the loop
    starting there, fitted on a SIZE square as the training targets are (data/motion.py spectral_targets)."""
    from ..motion.spectral import HARMONICS, LOOP_FRAMES, SIZE, volume_from_frames
    from ..rgba import fit_pad_frames, premultiply

    n = len(frames)
    k = min(LOOP_FRAMES, n)
    idx = [(cond + round(i * n / k)) % n for i in range(k)]
    pm = premultiply(fit_pad_frames(frames[idx], SIZE).astype(np.float32) / 255.0)
    return volume_from_frames(pm, 0, HARMONICS)


def library_from_clips(files: Sequence[Path], progress: Progress = _no_progress) -> MotionLibrary:
    """The library recomputed from training-split artist clips (one per base emoji; stills skipped)."""
    from ..data.animation import read_animation
    from .motion_calibrate import one_per_emoji
    from .realclips import prompt_for

    names, phases = [], []
    for p in progress(one_per_emoji(list(files)), "training motions"):
        anim = read_animation(p)
        if anim.num_frames >= 8:
            names.append(prompt_for(p.stem))
            phases.append(stored_phases(anim.frames, p.stem))
    return MotionLibrary(names, lambda j: phases[j], f"{len(names)} training-split artist clips")


# ---- held-out emoji ----------------------------------------------------------------------------------


@dataclass
class HeldOut:
    """One held-out emoji: the still, the artist's reference, its ceiling row and its own artist volume."""

    stem: str
    name: str
    still: np.ndarray  # (H, W, 4) uint8 straight RGBA: the artist's frame at `cond`
    ref: Reference
    ceiling: dict  # compare() of the artist's next second
    volume: np.ndarray  # the artist's consensus spectral volume
    exact: np.ndarray  # the artist's spectral volume measured from this still's own frame


def load_heldout(files: Sequence[Path], limit: int | None, size: int, progress: Progress = _no_progress
                 ) -> list[HeldOut]:
    """Held-out artist clips (one per base emoji, stills skipped, at most `limit`): the still at a per-name
    phase (as motion_calibrate.load_window), the reference around it, the next second, the artist volume."""
    from ..data.animation import read_animation
    from ..motion.spectral import consensus_volume
    from .motion_calibrate import one_per_emoji
    from .realclips import name_hash, prompt_for

    out: list[HeldOut] = []
    for p in progress(one_per_emoji(list(files)), "held-out clips"):
        if limit is not None and len(out) >= limit:
            break
        anim = read_animation(p)
        n = anim.num_frames
        if n < 8:
            continue
        fps = anim.fps or 24.0
        cond = name_hash(p.stem) % n
        ref = reference_profile(anim.frames, fps, cond)
        nxt = clip_profile(anim.frames, fps, (cond + round(fps)) % n)  # the artist's next second
        consensus = consensus_volume(stored_phases(anim.frames, p.stem).astype(np.float32))
        out.append(HeldOut(p.stem, prompt_for(p.stem), _fit(anim.frames[cond], size), ref,
                           {**compare(nxt, ref), **_size_parts(nxt)}, consensus, exact_volume(anim.frames, cond)))
    return out


def _fit(rgba: np.ndarray, size: int) -> np.ndarray:
    """Straight RGBA uint8 with the long side at most `size` (premultiplied Lanczos)."""
    if max(rgba.shape[:2]) <= size:
        return rgba
    from PIL import Image

    from ..rgba import fit_box, resize_image

    _, _, w, h = fit_box((rgba.shape[1], rgba.shape[0]), (size, size), 1.0)
    return np.asarray(resize_image(Image.fromarray(rgba, "RGBA"), (w, h)).convert("RGBA"))


def _size_parts(p: MotionProfile | None) -> dict:
    return {"size": None if p is None else p.size, "parts": None if p is None else p.parts}


# ---- the model and the render ------------------------------------------------------------------------


@dataclass
class Settings:
    fps: float = 24.0
    seconds: float = 2.0
    steps: int = 20
    image_guidance: float = 1.0
    text_guidance: float = 1.0

    @property
    def frames(self) -> int:
        """The product's loop (sampling/params.py loop_frames: 2 to MAX_FRAMES, else one UserError line)."""
        from ..sampling.params import loop_frames

        return loop_frames(self.fps, self.seconds)


class Sampler:
    """still + prompt + seed -> spectral volume through the product's motion_volume; times itself."""

    def __init__(self, net, text_encoders, settings: Settings) -> None:
        self.net, self.text, self.settings = net, text_encoders, settings
        self.seconds, self.calls = 0.0, 0

    def __call__(self, still: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        from ..sampling.motion_model import motion_volume

        s = self.settings
        t = time.perf_counter()
        v = motion_volume(self.net, self.text, still, prompt, seed, s.steps, s.image_guidance, s.text_guidance)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return v


def render(still: np.ndarray, volume: np.ndarray, settings: Settings) -> np.ndarray:
    """The product's render: (T, H, W, 4) float straight RGBA, frame 0 the still, a seamless loop."""
    from ..sampling.motion_model import render_motion

    return render_motion(still, volume, settings.frames, 0)


def judge(frames: np.ndarray, settings: Settings, ref: Reference, bands: dict) -> tuple[dict, MotionProfile | None]:
    """The three criteria of a rendered result against the artist's reference, pass of all three, and the
    result's absolute size and parts share; with its profile (for seed comparisons)."""
    p = clip_profile(frames, settings.fps, 0)
    values = compare(p, ref)
    return {**values, **_size_parts(p), "pass": all(bands[n].passes(values[n]) for n in MOTION_CRITERIA)}, p


def measure_heldout(clips: list[HeldOut], sampler: Sampler, library: MotionLibrary, retrieved: list[int],
                    settings: Settings, bands: dict, progress: Progress = _no_progress
                    ) -> tuple[list[dict], dict[int, np.ndarray]]:
    """Per held-out emoji the rows of every method (METHODS); and the model's seed-0 volumes (reused by
    the seed measure)."""
    rows, volumes = [], {}
    n = len(clips)
    for i, c in enumerate(progress(clips, "held-out emoji")):
        volumes[i] = sampler(c.still, c.name, 0)
        other = clips[(i + n // 2) % n] if n > 1 else c
        row = {"stem": c.stem, "name": c.name, "retrieved": library.names[retrieved[i]], "chance_from": other.stem}
        for method, vol in (("model", volumes[i]), ("retrieval", library.volume(retrieved[i], "phase")),
                            ("retrieval_consensus", library.volume(retrieved[i], "consensus")),
                            ("chance", other.exact), ("artist_exact", c.exact), ("artist_consensus", c.volume)):
            row[method] = judge(render(c.still, vol, settings), settings, c.ref, bands)[0]
        row["ceiling"] = {**c.ceiling, "pass": all(bands[k].passes(c.ceiling[k]) for k in MOTION_CRITERIA)}
        rows.append(row)
    return rows, volumes


def method_summary(rows: list[dict], bands: dict) -> dict:
    """Medians of the three criteria, of the absolute size and parts share, and the pass rates."""
    if not rows:
        return {"n": 0}
    out: dict = {"n": len(rows)}
    for name in (*MOTION_CRITERIA, "size", "parts"):
        v = np.array([np.nan if r.get(name) is None else r[name] for r in rows], float)
        out[f"{name}_median"] = float(np.nanmedian(v)) if np.isfinite(v).any() else None
    for name in MOTION_CRITERIA:
        out[f"{name}_pass"] = float(np.mean([bands[name].passes(r[name]) for r in rows]))
    out["all_three_pass"] = float(np.mean([r["pass"] for r in rows]))
    return out


def summarise_heldout(rows: list[dict], twins: list[dict], bands: dict) -> dict:
    """{subset: {method: summary}} for all emoji and without the near-twins."""
    keep = {"all": [True] * len(rows), "without_near_twins": [not t["near_twin"] for t in twins]}
    return {s: {m: method_summary([r[m] for r, k in zip(rows, keep[s]) if k], bands) for m in METHODS}
            for s in SUBSETS}


# ---- seeds -------------------------------------------------------------------------------------------


def _pair_corr(a: MotionProfile | None, b: MotionProfile | None) -> float:
    """Speed-map correlation of two results; 1.0 ("the same") when either has no motion to place."""
    if a is None or b is None:
        return 1.0
    c = where_correlation(a, b)
    return 1.0 if c is None else c


def measure_seeds(clips: list[HeldOut], sampler: Sampler, seed0: dict[int, np.ndarray], seeds: int,
                  settings: Settings, bands: dict, progress: Progress = _no_progress) -> list[dict]:
    """Per emoji: each seed's criteria and pass, the pairwise speed-map correlations, whether all pairs are
    distinct (<= DISTINCT_BELOW) and all seeds pass."""
    rows = []
    for i, c in enumerate(progress(clips, f"{seeds} seeds")):
        results, profiles = [], []
        for s in range(seeds):
            vol = seed0[i] if s == 0 and i in seed0 else sampler(c.still, c.name, s)
            r, p = judge(render(c.still, vol, settings), settings, c.ref, bands)
            results.append(r)
            profiles.append(p)
        pairs = [_pair_corr(profiles[a], profiles[b]) for a in range(seeds) for b in range(a + 1, seeds)]
        distinct = [x <= DISTINCT_BELOW for x in pairs]
        rows.append({"stem": c.stem, "name": c.name, "seeds": results, "pair_corr": pairs,
                     "pass_share": float(np.mean([r["pass"] for r in results])),
                     "all_distinct": bool(all(distinct)), "all_pass": bool(all(r["pass"] for r in results)),
                     "distinct_and_pass": bool(all(distinct) and all(r["pass"] for r in results))})
    return rows


def seeds_summary(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    pairs = np.array([x for r in rows for x in r["pair_corr"]], float)
    return {"n": len(rows), "seeds": len(rows[0]["seeds"]),
            "pair_corr_median": float(np.median(pairs)) if pairs.size else None,
            "pairs_distinct": float(np.mean(pairs <= DISTINCT_BELOW)) if pairs.size else None,
            "emoji_all_distinct": float(np.mean([r["all_distinct"] for r in rows])),
            "seeds_pass": float(np.mean([s["pass"] for r in rows for s in r["seeds"]])),
            "emoji_all_pass": float(np.mean([r["all_pass"] for r in rows])),
            "emoji_distinct_and_pass": float(np.mean([r["distinct_and_pass"] for r in rows]))}


# ---- unseen styles and prompts ----------------------------------------------------------------------


def sticker_name(s) -> str:
    """The emoji's name alone (its CLDR label, realclips.prompt_for) for a sticker named by its code points;
    else the caption up to its keywords (unseen-style captions read 'name; keyword, keyword')."""
    from ..data.captions import is_codepoint_stem
    from .realclips import prompt_for

    return prompt_for(s.name) if is_codepoint_stem(s.name) else s.subject.split(";")[0].strip()


def measure_style(stickers: list, sampler: Sampler, settings: Settings, artist: dict,
                  progress: Progress = _no_progress, desc: str = "style") -> list[dict]:
    """Per sticker (eval/axes.py Sticker): the name-only result's motion-alone record (eval/auto.py), and the
    measured dominant motion of each labelled prompt (usual wording and paraphrases)."""
    from ..data.captions import is_codepoint_stem
    from ..data.prompt_sets import subject_of
    from ..motion.words import describe_motion, dominant_motion
    from ..rgba import to_uint8
    from .auto import motion_alone_record
    from .labelled import labelled_prompts

    rows = []
    for i, s in enumerate(progress(stickers, desc)):
        name = sticker_name(s)
        frames = render(s.rgba, sampler(s.rgba, name, 0), settings)
        row = {"sticker": s.name, "name": name,
               **motion_alone_record(clip_profile(frames, settings.fps, 0), artist), "prompts": []}
        subject = subject_of(s.name if is_codepoint_stem(s.name) else name)[0]  # motion words taken out
        for set_name in ("usual", "paraphrase"):
            for prompt, label in labelled_prompts(subject, set_name, i):
                clip = to_uint8(render(s.rgba, sampler(s.rgba, prompt, 0), settings))
                measured = dominant_motion(describe_motion(clip, settings.fps, 0))
                row["prompts"].append({"set": set_name, "prompt": prompt, "motion": label, "measured": measured})
        rows.append(row)
    return rows


def style_summary(rows: list[dict], artist: dict) -> dict:
    """Motion alone (auto.motion_alone_summary) and prompt agreement (usual, paraphrase) over stickers."""
    from .auto import motion_alone_summary
    from .relevance import relevance_summary

    out = {"n": len(rows), "motion": motion_alone_summary(rows, artist)}
    for set_name in ("usual", "paraphrase"):
        records = [{"prompted": p["motion"], "measured": p["measured"]}
                   for r in rows for p in r["prompts"] if p["set"] == set_name]
        out[set_name] = relevance_summary(records)
    return out


def summarise_styles(rows: dict[str, list[dict]], trained: dict[str, bool], artist: dict) -> dict:
    """Per style and pooled over every style, for all stickers and without those whose emoji (by the
    near-twin rule) is a training Fluent emoji."""
    pooled = [r for rs in rows.values() for r in rs]
    groups = {**rows, "pooled": pooled}
    return {name: {"all": style_summary(rs, artist),
                   "without_near_twins": style_summary([r for r in rs if not trained.get(r["name"], False)], artist)}
            for name, rs in groups.items()}


# ---- the run -----------------------------------------------------------------------------------------


@dataclass
class Limits:
    heldout: int | None = None
    seed_emoji: int = 20
    seeds: int = 6
    per_style: int = 10


def run(net, text_encoders, heldout_files: Sequence[Path], library: MotionLibrary, styles: dict[str, list],
        settings: Settings, limits: Limits, size: int = 256, progress: Progress = _no_progress,
        meta: dict | None = None, checkpoint: Callable[[dict], None] | None = None) -> dict:
    """Every measure of the module docstring; `styles`: name -> list of axes.Sticker. The report dict;
    `checkpoint(report)` is called after each measure with the report so far (`meta.done` lists them), so a
    failure late in a long run keeps what was measured."""
    from . import auto, relevance  # noqa: F401  (imported up front: a broken import fails now, not an hour in)
    from .thresholds import load_motion_section

    start, cpu = time.perf_counter(), time.process_time()
    section = load_motion_section()
    bands, artist = section["criteria"], section["artist"]
    sampler = Sampler(net, text_encoders, settings)
    timings: dict = {}
    report: dict = {
        "meta": {"date": date.today().isoformat(), "settings": vars(settings) | {"frames": settings.frames},
                 "size": size, "limits": vars(limits), "library": library.source, "library_size": len(library.names),
                 "bands": {n: b.to_json() for n, b in bands.items()}, "artist": artist,
                 "near_twin_rule": f"MiniLM cosine (mean over the name's tokens) >= {TWIN_COSINE}, or the same words "
                                   f"once skin tones and {sorted(TWIN_WORDS)} are dropped (order ignored)",
                 "distinct_below": DISTINCT_BELOW, "timings": timings, "done": [], **(meta or {})},
        "heldout": {"n": 0, "near_twins": 0, "summary": {}, "rows": []},
        "seeds": {"summary": {s: {"n": 0} for s in SUBSETS}, "rows": []},
        "styles": {"summary": {}, "rows": {}, "trained_names": {}},
    }

    def stage_done(name: str, t0: float) -> None:
        timings[f"{name}_s"] = time.perf_counter() - t0
        timings.update(model_s=sampler.seconds, model_calls=sampler.calls, wall_s=time.perf_counter() - start,
                       cpu_s=time.process_time() - cpu)
        report["meta"]["done"].append(name)
        report["done_means"] = done_means(report)
        if checkpoint is not None:
            checkpoint(report)

    t = time.perf_counter()
    clips = load_heldout(heldout_files, limits.heldout, size, progress)
    if not clips:
        from ..errors import UserError

        raise UserError("no animated held-out clips to evaluate")
    embed = NameEmbedder()
    lib = embed(library.names)
    sim = embed([c.name for c in clips]) @ lib.T  # (Q, N) cosines
    retrieved = [int(j) for j in np.argmax(sim, axis=1)]
    twins = near_twins([c.name for c in clips], library.names, sim)
    style_names = sorted({sticker_name(s) for st in styles.values() for s in st})
    style_twins = {t_["name"]: t_["near_twin"] for t_ in
                   near_twins(style_names, library.names, embed(style_names) @ lib.T)} if style_names else {}
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    rows, seed0 = measure_heldout(clips, sampler, library, retrieved, settings, bands, progress)
    for r, tw in zip(rows, twins):
        r.update(near_twin=tw["near_twin"], twin=tw["twin"], twin_rule=tw["rule"], nearest_cosine=tw["cosine"])
    report["heldout"] = {"n": len(rows), "near_twins": int(sum(t_["near_twin"] for t_ in twins)),
                         "summary": summarise_heldout(rows, twins, bands), "rows": rows}
    stage_done("heldout", t)

    t = time.perf_counter()
    k = min(limits.seed_emoji, len(clips))
    seed_rows = measure_seeds(clips[:k], sampler, seed0, limits.seeds, settings, bands, progress) \
        if limits.seeds > 1 and k else []
    for r, tw in zip(seed_rows, twins):
        r["near_twin"] = tw["near_twin"]
    report["seeds"] = {"summary": {"all": seeds_summary(seed_rows),
                                   "without_near_twins": seeds_summary([r for r in seed_rows if not r["near_twin"]])},
                       "rows": seed_rows}
    stage_done("seeds", t)

    t = time.perf_counter()
    style_rows: dict[str, list] = {}
    for name, st in styles.items():
        style_rows[name] = measure_style(st, sampler, settings, artist, progress, f"style {name}")
        report["styles"] = {"summary": summarise_styles(style_rows, style_twins, artist), "rows": style_rows,
                            "trained_names": style_twins}
        stage_done(f"style_{name}", t)
        t = time.perf_counter()
    report["meta"]["complete"] = True
    if checkpoint is not None:
        checkpoint(report)
    return report


def done_means(report: dict) -> list[dict]:
    """Issue 28's measurable bars, each with the measured figure (all / without near-twins) and whether met."""
    h = report["heldout"]["summary"]
    artist = report["meta"]["artist"]
    q10, q90 = (artist.get("parts_q10_q90") or [None, None])[:2]
    checks = []

    def add(what, target, key, ok):
        vals = {s: key(s) for s in SUBSETS}
        checks.append({"what": what, "target": target, "all": vals["all"],
                       "without_near_twins": vals["without_near_twins"],
                       "met": {s: (None if v is None else bool(ok(v))) for s, v in vals.items()}})

    add("held-out: where (median motion-map correlation)", ">= 0.6",
        lambda s: h[s]["model"].get("motion_where_median"), lambda v: v >= 0.6)
    add("held-out: size ratio (median)", "0.7-1.4", lambda s: h[s]["model"].get("motion_size_median"),
        lambda v: 0.7 <= v <= 1.4)
    add("held-out: parts share (median) within the artist clips' q10-q90",
        "-" if q10 is None else f"{q10:.2f}-{q90:.2f}", lambda s: h[s]["model"].get("parts_median"),
        lambda v: q10 is not None and q10 <= v <= q90)
    seeds = report["seeds"]["summary"]
    add("seeds: share of emoji whose seeds are all distinct (<= 0.9) and all pass", "1.0 (every emoji)",
        lambda s: seeds[s].get("emoji_distinct_and_pass"), lambda v: v >= 1.0)
    st = report["styles"]["summary"]
    pooled = st.get("pooled", {})
    add("unseen styles: median motion (of the alpha-box diagonal)", ">= 0.010",
        lambda s: pooled.get(s, {}).get("motion", {}).get("size_median"), lambda v: v >= 0.010)
    add("unseen styles: prompts naming bounce/slide/spin/pulse move as asked", ">= 0.8",
        lambda s: pooled.get(s, {}).get("usual", {}).get("agreement"), lambda v: v >= 0.8)
    add("unseen styles: paraphrases move as asked", ">= 0.6",
        lambda s: pooled.get(s, {}).get("paraphrase", {}).get("agreement"), lambda v: v >= 0.6)
    return checks


# ---- report files ------------------------------------------------------------------------------------


def _f(x, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def report_markdown(report: dict) -> str:
    meta, h = report["meta"], report["heldout"]
    s, tm = meta["settings"], meta["timings"]
    lines = [
        "# The learned motion model against issue 28's \"Done means\"", "",
        f"Model `{meta.get('model', '?')}`" +
        (f" (step {meta['snapshot_step']})" if meta.get("snapshot_step") else "") +
        f", {meta['date']}. Render: {s['frames']} frames ({s['fps']:g} fps x {s['seconds']:g} s), frame 0 the still, "
        f"{meta['size']} px; sampler {s['steps']} steps, image guidance {s['image_guidance']:g}, text guidance "
        f"{s['text_guidance']:g}. Wall time {tm['wall_s']:.0f} s ({tm['model_calls']} model samples, "
        f"{tm['model_s']:.0f} s in the model). Reproduce: `{meta.get('command', 'stickers eval motion-model')}`.", "",
        *([] if meta.get("complete") else [f"**Partial report**: measured so far: {', '.join(meta['done'])}.", ""]),
        "## Held-out Fluent emoji against the artist's own clip (the name only as the prompt)", "",
        f"{h['n']} held-out emoji (one clip per base emoji), {h['near_twins']} of them with a near-twin in "
        f"training. Near-twin rule: {meta['near_twin_rule']}. Retrieval library: {meta['library']} "
        f"({meta['library_size']} names). Bands: " + ", ".join(
            f"{n} {b['low']:.3g}..{'' if b['high'] is None else format(b['high'], '.3g')}"
            for n, b in meta["bands"].items()) + ".", "",
    ]
    label = {"model": "**model** (seed 0)", "retrieval": "retrieval (nearest training name; a stored phase)",
             "retrieval_consensus": "retrieval, its consensus volume (a canonical-phase model's target)",
             "chance": "chance (another emoji's artist motion)", "ceiling": "ceiling (artist's next second)",
             "artist_exact": "artist's motion from this still as a volume (field + render limit)",
             "artist_consensus": "artist's consensus volume (the training target)"}
    for subset in SUBSETS:
        sm = h["summary"][subset]
        lines += [f"### {'All' if subset == 'all' else 'Without near-twins'} (n = {sm['model']['n']})", "",
                  "| method | where (median) | size ratio (median) | parts diff (median) | parts share (median) | "
                  "where pass | size pass | parts pass | all three pass |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for m in METHODS:
            r = sm[m]
            if not r.get("n"):
                continue
            lines.append(f"| {label[m]} | {_f(r['motion_where_median'])} | {_f(r['motion_size_median'])} | "
                         f"{_f(r['motion_parts_median'])} | {_f(r['parts_median'])} | {_f(r['motion_where_pass'])} | "
                         f"{_f(r['motion_size_pass'])} | {_f(r['motion_parts_pass'])} | {_f(r['all_three_pass'])} |")
        lines.append("")
    lines += [f"Artist clips' parts share: median {_f(meta['artist'].get('parts_median'))}, q10-q90 "
              + "-".join(_f(x) for x in (meta["artist"].get("parts_q10_q90") or [])) + ".", ""]
    twins = [r for r in h["rows"] if r["near_twin"]]
    if twins:
        lines += ["Near-twins (held-out name -> training twin, by rule; cosine of the nearest training name):", ""]
        lines += [f"- {r['name']} -> {r['twin']} ({r['twin_rule']}; {_f(r['nearest_cosine'])})" for r in twins]
        lines.append("")
    sd = report["seeds"]["summary"]
    lines += ["## Seeds", "",
              f"Per emoji (the first held-out ones), {sd['all'].get('seeds', '-')} seeds; two motions are distinct "
              "when "
              f"their speed maps correlate <= {meta['distinct_below']} (a result with no motion counts 1.0).", "",
              "| subset | emoji | pair corr (median) | pairs distinct | emoji all distinct | seeds pass all three | "
              "emoji all seeds pass | emoji distinct and pass |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for subset in SUBSETS:
        r = sd[subset]
        if r.get("n"):
            lines.append(f"| {subset} | {r['n']} | {_f(r['pair_corr_median'])} | {_f(r['pairs_distinct'])} | "
                         f"{_f(r['emoji_all_distinct'])} | {_f(r['seeds_pass'])} | {_f(r['emoji_all_pass'])} | "
                         f"{_f(r['emoji_distinct_and_pass'])} |")
    st = report["styles"]["summary"]
    if st.get("pooled", {}).get("all", {}).get("n"):
        artist = meta["artist"]
        lines += ["", "## Unseen styles (name only) and prompts", "",
                  f"Motion size in alpha-box diagonals (artist clips' median {_f(artist.get('size_median'), '.4f')}; "
                  f"hardly moves below {_f(artist.get('hardly_moves_below'), '.4g')}). Prompts: the four labelled "
                  "motions (bounce / slide / spin / pulse), measured dominant motion vs the label (chance 0.25); "
                  "through the motion model's text encoder only. `without near-twins`: stickers whose emoji (by the "
                  "near-twin rule) is not a training Fluent emoji.", "",
                  "| style | subset | stickers | size (median) | parts (median) | hardly moves | usual wording | "
                  "paraphrases |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, groups in st.items():
            for subset in SUBSETS:
                r = groups[subset]
                if not r["n"]:
                    continue
                lines.append(f"| {name} | {subset} | {r['n']} | {_f(r['motion']['size_median'], '.4f')} | "
                             f"{_f(r['motion']['parts_median'])} | {_f(r['motion']['hardly_moves'])} | "
                             f"{_f(r['usual']['agreement'])} ({r['usual']['n']}) | "
                             f"{_f(r['paraphrase']['agreement'])} ({r['paraphrase']['n']}) |")
        pooled = st["pooled"]["all"]
        for set_name in ("usual", "paraphrase"):
            per = pooled[set_name]["per_word"]
            lines += ["", f"Measured motion per labelled motion ({set_name}, pooled): " + "; ".join(
                f"{w}: {r['agree']}/{r['n']} ({', '.join(f'{k} {v}' for k, v in sorted(r['measured'].items()))})"
                for w, r in sorted(per.items()))]
    lines += ["", "## Done means (measurable parts)", "",
              "| bar | target | all | without near-twins | met (all / without) |",
              "|---|---|---:|---:|---|"]
    for c in report["done_means"]:
        met = " / ".join("-" if m is None else ("yes" if m else "no") for m in c["met"].values())
        lines.append(f"| {c['what']} | {c['target']} | {_f(c['all'], '.3f')} | {_f(c['without_near_twins'], '.3f')} | "
                     f"{met} |")
    lines += ["", "Not measured here: detail, identity and looping (the frames are the sticker's own pixels by "
              "construction), frame-to-frame smoothness, the contact sheets, the README's first command.", ""]
    return "\n".join(lines)


def short_table(report: dict) -> str:
    """What the command prints: the held-out table (all / without near-twins) and the other measures."""
    h = report["heldout"]["summary"]
    lines = ["method          | where all/no-twin | size all/no-twin | parts share | all three pass"]
    for m in METHODS:
        a, b = h["all"][m], h["without_near_twins"][m]
        if not a.get("n"):
            continue
        lines.append(f"{m:<15} | {_f(a['motion_where_median'])} / {_f(b.get('motion_where_median'))} | "
                     f"{_f(a['motion_size_median'])} / {_f(b.get('motion_size_median'))} | {_f(a['parts_median'])} | "
                     f"{_f(a['all_three_pass'])} / {_f(b.get('all_three_pass'))}")
    sd = report["seeds"]["summary"]["all"]
    if sd.get("n"):
        lines.append(f"seeds: {sd['n']} emoji x {sd['seeds']}: pair corr median {_f(sd['pair_corr_median'])}, "
                     f"pairs distinct {_f(sd['pairs_distinct'])}, seeds pass {_f(sd['seeds_pass'])}, "
                     f"emoji distinct and pass {_f(sd['emoji_distinct_and_pass'])}")
    for name, g in report["styles"]["summary"].items():
        r = g["all"]
        if r["n"]:
            lines.append(f"style {name}: n={r['n']} size {_f(r['motion']['size_median'], '.4f')}, prompts "
                         f"{_f(r['usual']['agreement'])}, paraphrases {_f(r['paraphrase']['agreement'])}")
    lines.append(f"wall {report['meta']['timings']['wall_s']:.0f} s")
    return "\n".join(lines)


def write_report(out: Path, report: dict) -> tuple[Path, Path]:
    """OUT/report.json and OUT/REPORT.md, each written atomically."""
    from ..atomic import atomic_write_text
    from .report import dumps

    out.mkdir(parents=True, exist_ok=True)
    return (atomic_write_text(out / "report.json", dumps(report) + "\n"),
            atomic_write_text(out / "REPORT.md", report_markdown(report)))


def load_styles(styles: Sequence[str], n: int, size: int, cache: Path | None = None) -> dict[str, list]:
    """name -> stickers (eval/axes.py Sticker): a style of axes.STYLES (Twemoji, Noto, Fluent high-contrast),
    or a folder of PNG/WebP stills (the subject is the file stem, '_' and '-' read as spaces)."""
    from .axes import STYLES, Sticker, load_stickers

    out = {}
    for style in styles:
        folder = Path(style)
        if folder.is_dir():
            from PIL import Image

            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".webp"))[:n]
            stickers = []
            for p in files:
                with Image.open(p) as im:
                    im = im.convert("RGBA")
                    im.thumbnail((size, size), Image.LANCZOS)
                    stickers.append(Sticker(p.stem, np.asarray(im), re.sub(r"[_\-]+", " ", p.stem)))
            out[folder.name] = stickers
        elif style in STYLES and style != "heldout":
            from ..data.sources import default_cache

            out[style] = load_stickers(style, n, cache or default_cache(), size)
        else:
            from ..errors import UserError

            raise UserError(f"--style '{style}': expected twemoji, noto, fluent-high-contrast or a folder of stills")
    return out
