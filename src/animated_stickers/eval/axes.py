"""What a user judges first, on held-out and unseen-style stickers: motion, detail, relevance, looping.

`stickers eval axes --model M --style S` animates N stickers of one style with four prompts that name
clearly different motions, each labelled with its motion in its own file (labelled.py), the same four
motions worded as paraphrases no table holds, one more seed of the first, and (held-out Fluent emoji)
the emoji's name alone, then reports, per style:
  motion     - median motion size (of the alpha box diagonal), parts share and the share that hardly moves,
               beside the artist clips' own figures (motion_calibrate.py); on held-out emoji also the three
               motion criteria of the name-only result against the artist's clip (motionref.py)
  detail     - median detail ratio (eval/detail.py: fine detail of the frames over the input's, same size),
               against the sticker as the clip draws it (smaller where the prompt's motion needed room:
               `drawn at` is that scale) and, beside it, against the input at its full size
  cond_psnr  - the conditioning frame against the sticker as drawn (dB): is the sticker's own look kept?
  relevance  - agreement of the measured motion with the label (eval/relevance.py, chance stated), for the
               usual wording and for the paraphrases, and prompt sensitivity (distance between prompts /
               distance between seeds)
  looping    - the calibrated looping criterion's pass rate, and the share of seams larger than twice the
               median frame-to-frame change
Styles: `heldout` (held-out Fluent emoji: the real clips' conditioning frames), `fluent-high-contrast`
(the style held out of all training), and the test-only `twemoji` / `noto` (never trained on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.prompt_sets import subject_of
from ..rgba import fit_premultiplied, premultiply
from ..sampling.prompt_motion import drawn_sticker
from .detail import detail_ratio, psnr
from .labelled import labelled_prompts
from .motionref import clip_profile, compare, nearest_frame, reference_profile
from .relevance import clip_distance, motion_agreement

STYLES = ("heldout", "fluent-high-contrast", "twemoji", "noto")


@dataclass
class Sticker:
    name: str
    rgba: np.ndarray  # (H, W, 4) uint8 straight
    subject: str
    real: Path | None = None  # the artist's animation of this sticker (held-out Fluent emoji)


def load_stickers(style: str, n: int, cache: Path, size: int = 256, seed: int = 0) -> list[Sticker]:
    """N stickers of a style at `size` px on the long side."""
    from PIL import Image

    from ..errors import UserError

    def _resized(rgba: np.ndarray) -> np.ndarray:
        im = Image.fromarray(rgba, "RGBA")
        im.thumbnail((size, size), Image.LANCZOS)
        return np.asarray(im)

    if style == "heldout":
        from .realclips import fluent_files, load_real_clips

        clips = load_real_clips(fluent_files(split="heldout"), n, size=size)
        from ..data.captions import caption_for

        paths = {p.stem: p for p in fluent_files(split="heldout")}
        return [Sticker(c.stem, c.image, caption_for(c.stem).label, paths[c.stem]) for c in clips]
    if style in ("twemoji", "noto"):
        from ..data.test_sets import unseen_stills

        return [Sticker(name, _resized(rgba), cap) for name, rgba, cap in unseen_stills(cache, style, n, seed)]
    if style == "fluent-high-contrast":
        import random

        from ..data.sources import style_items

        items = style_items(cache, style, progress=False)
        chosen = random.Random(seed).sample(items, min(n, len(items)))
        out = []
        for it in chosen:
            rgba = np.asarray(Image.open(it.path).convert("RGBA"))
            subject = it.caption
            if subject is None:
                from ..data.captions import CaptionError, caption_for

                try:
                    subject = caption_for(it.name).label
                except CaptionError:
                    subject = it.name
            out.append(Sticker(it.name, _resized(rgba), subject))
        return out
    raise UserError(f"--style '{style}': expected one of {', '.join(STYLES)}")


def seam_ratio(frames: np.ndarray) -> float:
    """Last->first change over the median frame-to-frame change (premultiplied, 64 px)."""
    pm = premultiply(np.asarray(frames))
    small = np.stack([fit_premultiplied(f, (64, 64)) for f in pm])
    steps = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2, 3))
    seam = float(np.abs(small[-1] - small[0]).mean())
    return seam / max(float(np.median(steps)), 1e-4)


def evaluate_style(animate: Callable, stickers: list[Sticker], cond: int, fps: float, thresholds,
                   progress=iter, room: bool = True, motion=None) -> dict:
    """`animate(rgba, prompts, seed) -> list of (T, H, W, 4) uint8` for one sticker and several prompts;
    `room`: whether those settings draw the sticker smaller for its motion (prompt_motion.draws_smaller);
    `motion`: thresholds.load_motion_section() (the motion criteria and the artist clips' figures)."""
    from .measures import looping, make_clip

    rows, items, para_items, a_clips, b_clips, a2_clips, vs_real = [], [], [], [], [], [], []
    profiles: dict[str, list] = {"usual": [], "paraphrase": []}
    for i, s in enumerate(progress(stickers)):
        subject = subject_of(s.subject)[0]
        usual, para = labelled_prompts(subject, "usual", i), labelled_prompts(subject, "paraphrase", i)
        prompts = [p for p, _ in usual]
        clips = animate(s.rgba, prompts + [p for p, _ in para], 0)
        clips, para_clips = clips[:len(usual)], clips[len(usual):]
        second = animate(s.rgba, prompts[:1], 1)[0]
        a_clips.append(clips[0])
        b_clips.append(clips[1])
        a2_clips.append(second)
        para_items += [(label, c, fps, cond) for (_, label), c in zip(para, para_clips)]
        profiles["usual"] += [clip_profile(c, fps, cond) for c in clips]
        profiles["paraphrase"] += [clip_profile(c, fps, cond) for c in para_clips]
        if s.real is not None:  # the name alone, against the artist's own clip
            vs_real.append(_versus_artist(animate(s.rgba, [subject], 0)[0], fps, cond, s))
        for (p, label), c in zip(usual, clips):
            items.append((label, c, fps, cond))
            # The sticker as the clip draws it: smaller where the prompt's motion needed room (the scale
            # is reported; detail and PSNR are then about the rendering, not the size).
            image, scale = drawn_sticker(s.rgba, p, len(c), room)
            loop_value = looping(make_clip(c, image, cond)).value
            ref = fit_premultiplied(premultiply(image), c.shape[1:3])
            rows.append({
                "sticker": s.name, "prompt": p, "motion": label,
                "detail": detail_ratio(c, image),
                "detail_vs_input": detail_ratio(c, s.rgba),
                "room_scale": scale,
                "cond_psnr": psnr(premultiply(c[cond]), ref),
                "seam_ratio": seam_ratio(c),
                "looping_pass": bool(thresholds["looping"].passes(loop_value)),
            })
    agreement = motion_agreement(items)
    paraphrase = motion_agreement(para_items)
    between = [clip_distance(a, b) for a, b in zip(a_clips, b_clips)]
    seeds = [clip_distance(a, a2) for a, a2 in zip(a_clips, a2_clips)]
    return {
        "stickers": len(stickers), "clips": len(rows),
        "detail_median": float(np.median([r["detail"] for r in rows])),
        "detail_vs_input_median": float(np.median([r["detail_vs_input"] for r in rows])),
        "room_scale_median": float(np.median([r["room_scale"] for r in rows])),
        "detail_below_0.7": float(np.mean([r["detail"] < 0.7 for r in rows])),
        "cond_psnr_median": float(np.median([r["cond_psnr"] for r in rows])),
        "agreement": agreement["agreement"], "chance": agreement["chance"], "per_word": agreement["per_word"],
        "paraphrase_agreement": paraphrase["agreement"], "paraphrase_per_word": paraphrase["per_word"],
        "sensitivity": float(np.mean(between) / max(np.mean(seeds), 1e-9)),
        "looping_pass": float(np.mean([r["looping_pass"] for r in rows])),
        "seam_over_2x": float(np.mean([r["seam_ratio"] > 2.0 for r in rows])),
        "motion": {name: motion_alone(p, motion) for name, p in profiles.items()},
        "vs_artist": versus_artist_summary(vs_real, motion),
        "rows": rows,
    }


def _versus_artist(frames: np.ndarray, fps: float, cond: int, s: Sticker) -> dict:
    """The three motion criteria's raw values of one result against the sticker's artist animation."""
    from ..data.animation import read_animation

    anim = read_animation(s.real)
    real_cond = nearest_frame(anim.frames, s.rgba)
    return {"sticker": s.name, **compare(clip_profile(frames, fps, cond),
                                         reference_profile(anim.frames, anim.fps, real_cond))}


def motion_alone(profiles: list, motion: dict | None) -> dict:
    """Motion figures with no reference clip (auto.py's records and summary, one place), beside the
    artist clips' own figures from the motion calibration."""
    from .auto import motion_alone_record, motion_alone_summary

    artist = (motion or {}).get("artist", {})
    return motion_alone_summary([motion_alone_record(p, artist) for p in profiles], artist)


def versus_artist_summary(rows: list[dict], motion: dict | None) -> dict:
    """Medians of the three criteria and their pass rates (all three together too) over the results."""
    from .motionref import MOTION_CRITERIA

    if not rows:
        return {"n": 0}
    bands = (motion or {}).get("criteria", {})
    out: dict = {"n": len(rows), "rows": rows}
    for name in MOTION_CRITERIA:
        v = np.array([np.nan if r[name] is None else r[name] for r in rows], float)
        out[f"{name}_median"] = float(np.nanmedian(v)) if np.isfinite(v).any() else None
        if name in bands:
            out[f"{name}_pass"] = float(np.mean([bands[name].passes(r[name]) for r in rows]))
    if bands:
        out["all_three_pass"] = float(np.mean([all(bands[n].passes(r[n]) for n in MOTION_CRITERIA) for r in rows]))
    return out


def summary_markdown(results: dict[str, dict]) -> str:
    def f(x, fmt=".2f"):
        return "-" if x is None else format(x, fmt)

    lines = ["| style | stickers | detail (median) | detail < 0.7 | detail vs input at full size | drawn at (median) | "
             "cond PSNR dB | agreement (chance) | paraphrases | sensitivity | looping pass | seam > 2x median |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for style, r in results.items():
        agree = "-" if r["agreement"] is None else f"{r['agreement']:.2f} ({r['chance']:.2f})"
        lines.append(f"| {style} | {r['stickers']} | {r['detail_median']:.2f} | {r['detail_below_0.7']:.2f} | "
                     f"{r['detail_vs_input_median']:.2f} | {r['room_scale_median']:.2f} | "
                     f"{r['cond_psnr_median']:.1f} | {agree} | {f(r['paraphrase_agreement'])} | "
                     f"{r['sensitivity']:.2f} | {r['looping_pass']:.2f} | {r['seam_over_2x']:.2f} |")
    lines += ["", "Motion (sizes in alpha-box diagonals; the artist clips' own figures beside them; usual wording / "
              "paraphrases):", "",
              "| style | clips | size (median) | artist size | parts share | artist parts | hardly moves | "
              "name only vs artist: size / where / parts (median) | all three pass |",
              "|---|---|---|---|---|---|---|---|---|"]
    for style, r in results.items():
        u, p, v = r["motion"]["usual"], r["motion"]["paraphrase"], r["vs_artist"]
        versus = "-" if not v.get("n") else (f"{f(v['motion_size_median'])} / {f(v['motion_where_median'])} / "
                                             f"{f(v['motion_parts_median'])} (n={v['n']})")
        lines.append(f"| {style} | {u['n']} + {p['n']} | {f(u['size_median'], '.4f')} / {f(p['size_median'], '.4f')} | "
                     f"{f(u['artist_size_median'], '.4f')} | {f(u['parts_median'])} / {f(p['parts_median'])} | "
                     f"{f(u['artist_parts_median'])} | {f(u['hardly_moves'])} / {f(p['hardly_moves'])} | {versus} | "
                     f"{f(v.get('all_three_pass'))} |")
    return "\n".join(lines)


def decoder_reconstruction(model, clips, size: int = 256, noise: float = 0.0, progress=iter) -> dict:
    """The decoder on its own, on real held-out clips: encode the real frames at the model canvas (plus
    `noise` on the latents, like generation errors), then decode (a) today's way, decode-and-upscale, and
    (b) with the reference decoder and the real conditioning frame at `size` px; PSNR/SSIM against the
    real frames at `size`, detail ratio vs the conditioning frame. `clips`: RealClip at `size` px."""
    import torch

    from ..models.decoder import decode_plain
    from ..rgba import premultiply_tensor, unpremultiply_tensor
    from .detail import ssim

    canvas = model.cfg.resolution
    rows = []
    for c in progress(clips):
        real = c.loop  # (T, S, S, 4) uint8: one whole loop, the conditioning frame at c.cond
        x = torch.from_numpy(real).permute(0, 3, 1, 2).float() / 255  # (T, 4, S, S)
        small = unpremultiply_tensor(torch.nn.functional.interpolate(premultiply_tensor(x), size=(canvas, canvas),
                                                                     mode="area"))  # no colour bleed at edges
        with torch.no_grad():
            z = model.vae.encode(small)  # (T, C, h, w)
            z = z + noise * torch.randn_like(z)
            z = z.transpose(0, 1)[None]  # (T, C, h, w) -> (1, C, T, h, w)
            plain = (decode_plain(model.vae, z, size)[0].permute(1, 2, 3, 0).clamp(0, 1) * 255).round()
            ref = model.decoder.decode(model.vae, z, x[c.cond][None], c.cond)
            fused = (ref[0].permute(1, 2, 3, 0).clamp(0, 1) * 255).round()
        truth = premultiply(real)
        row = {"clip": c.stem}
        for name, out in (("plain", plain), ("decoder", fused)):
            frames = out.byte().numpy()
            pm = premultiply(frames)
            row[f"{name}_psnr"] = float(np.mean([psnr(p, t) for p, t in zip(pm, truth)]))
            row[f"{name}_ssim"] = float(np.mean([ssim(p, t) for p, t in zip(pm, truth)]))
            row[f"{name}_detail"] = detail_ratio(frames, real[c.cond])
            row[f"{name}_cond_psnr"] = psnr(pm[c.cond], truth[c.cond])
        rows.append(row)
    keys = [k for k in rows[0] if k != "clip"]
    return {"clips": len(rows), **{k: float(np.median([r[k] for r in rows])) for k in keys}, "rows": rows}
