"""The motion criteria against an artist's clip (issue 26), on procedural characters whose motion is known.

A drawn character (a textured body, a head, an arm) is the "artist's clip": a 2 s loop at 24 fps whose arm
waves once a second while the body bobs a little. The broken kinds of motion_broken.py are built from it
and each must fail the criterion it targets; the character one second later must pass all three.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from animated_stickers.eval import motion_broken as mb
from animated_stickers.eval.motionref import (
    BASIS_COND,
    basis_flows,
    clip_profile,
    compare,
    nearest_frame,
    profile,
    reference_profile,
    to_basis,
)
from animated_stickers.eval.thresholds import load_motion_section

FPS, SECONDS = 24, 2


def character(t: float, size: int = 128, part: str = "arm", amp: float = 1.0, bob: float = 2.0) -> np.ndarray:
    """Straight RGBA uint8 (size, size, 4) at time t (seconds): a striped body and head; `part` ('arm' on
    the upper right or 'leg' at the lower left) swings once a second, the body bobs once per loop."""
    s = size / 128
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    dy = bob * np.sin(2 * np.pi * t / SECONDS)  # in 128-px units, like every coordinate below
    d.ellipse([34 * s, (50 + dy) * s, 94 * s, (110 + dy) * s], fill=(230, 160, 40, 255))
    d.ellipse([44 * s, (18 + dy) * s, 84 * s, (58 + dy) * s], fill=(250, 210, 90, 255))
    for k in range(5):  # stripes and eyes: texture for the flow to hold on to
        y = (60 + 10 * k + dy) * s
        d.line([40 * s, y, 88 * s, y], fill=(120, 60, 20, 255), width=max(1, round(2 * s)))
    d.ellipse([54 * s, (32 + dy) * s, 60 * s, (38 + dy) * s], fill=(20, 20, 20, 255))
    d.ellipse([68 * s, (32 + dy) * s, 74 * s, (38 + dy) * s], fill=(20, 20, 20, 255))
    angle = amp * 0.7 * np.sin(2 * np.pi * t)  # radians, once a second
    pivot = np.array([88.0, 62.0 + dy]) if part == "arm" else np.array([46.0, 100.0 + dy])
    base = np.array([[0, -5], [34, -5], [34, 5], [0, 5]], float)
    if part == "leg":
        base = base[:, ::-1] * [1, 1]  # pointing down
    c, si = np.cos(angle), np.sin(angle)
    pts = (base @ np.array([[c, si], [-si, c]])) + pivot
    d.polygon([tuple(p * s) for p in pts], fill=(60, 120, 220, 255))
    tip = pts[1:3].mean(0) * s
    d.ellipse([tip[0] - 6 * s, tip[1] - 6 * s, tip[0] + 6 * s, tip[1] + 6 * s], fill=(250, 250, 250, 255))
    return np.asarray(im)


def loop(fps: int = FPS, size: int = 128, **kw) -> np.ndarray:
    """The whole loop (T, size, size, 4) uint8."""
    return np.stack([character(i / fps, size, **kw) for i in range(SECONDS * fps)])


@pytest.fixture(scope="module")
def bands():
    return load_motion_section()["criteria"]


@pytest.fixture(scope="module")
def artist():
    frames = loop()
    cond = 5
    return frames, cond, reference_profile(frames, FPS, cond)


def verdicts(values: dict, bands) -> dict:
    return {name: bands[name].passes(v) for name, v in values.items()}


def test_the_basis_ignores_frame_rate_loop_length_and_resolution():
    """The same motion at 24 fps / 256 px / 2 s and at 8 fps / 128 px measures the same."""
    hi = clip_profile(loop(24, 256), 24, 0)
    lo = clip_profile(loop(8, 128), 8, 0)
    assert hi.size == pytest.approx(lo.size, rel=0.15)
    assert compare(hi, reference_profile(loop(8, 128), 8, 0))["motion_where"] > 0.9


def test_the_artists_next_second_passes_all_three(artist, bands):
    frames, cond, ref = artist
    nxt = clip_profile(frames, FPS, cond + FPS)
    v = compare(nxt, ref)
    assert all(verdicts(v, bands).values()), v


def test_each_broken_kind_fails_what_it_targets(artist, bands):
    frames, cond, ref = artist
    second = to_basis(frames, FPS, cond)
    pull, push = mb.pull_flows(second, BASIS_COND), basis_flows(second, BASIS_COND)
    other = to_basis(loop(part="leg"), FPS, cond)  # another character's motion: the leg, not the arm
    kinds = {
        "warped": mb.warped(second, pull, BASIS_COND),
        "small": mb.small(second, pull, BASIS_COND),
        "bulk": mb.bulk(second, push, BASIS_COND, np.random.default_rng(0)),
        "frozen": mb.frozen(second, BASIS_COND),
        "swapped": mb.swapped(second, pull, BASIS_COND, mb.pull_flows(other, BASIS_COND)),
    }
    result = {k: compare(profile(f), ref) for k, f in kinds.items()}
    ok = {k: verdicts(v, bands) for k, v in result.items()}
    assert all(ok["warped"].values()), result["warped"]  # the artist's own motion by the warp render passes
    for kind, targets in mb.MOTION_TARGETS.items():
        assert not all(ok[kind][t] for t in targets), (kind, result[kind])
    assert result["small"]["motion_size"] == pytest.approx(mb.SMALL_SCALE, abs=0.1)
    assert result["bulk"]["motion_size"] == pytest.approx(1.0, abs=0.25)  # right size, no parts


def test_parts_share_tells_a_waving_arm_from_a_body_moved_as_one_piece():
    waving = clip_profile(loop(bob=0.0), FPS, 0)
    still = character(0.0, bob=0.0)
    shift = np.stack([np.roll(still, (round(3 * np.sin(2 * np.pi * i / FPS)), 0), axis=(0, 1))
                      for i in range(FPS)])  # the whole body bobbing 3 px
    rigid = clip_profile(shift, FPS, 0)
    assert waving.parts > 0.35 and rigid.parts < 0.2


def test_the_conditioning_frame_is_found_as_the_frame_nearest_the_still():
    frames = loop(8)
    assert nearest_frame(frames, frames[5]) == 5
    small_still = np.asarray(Image.fromarray(frames[11]).resize((64, 64)))
    assert nearest_frame(frames, small_still) == 11


def test_calibration_report_on_procedural_animations(tmp_path):
    """The calibration command's core on six procedural 'artist' animations: it fits bands and reports
    every kind on both halves (the committed report comes from 183 held-out Fluent emoji)."""
    from animated_stickers.eval.motion_calibrate import KINDS, run_motion_calibration

    files = []
    for i, (part, amp) in enumerate([("arm", 1.0), ("leg", 1.0), ("arm", 0.6), ("leg", 0.7), ("arm", 1.3),
                                     ("leg", 1.2)]):
        frames = [Image.fromarray(character(k / 12, 96, part=part, amp=amp)) for k in range(24)]
        path = tmp_path / f"clip{i}.webp"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=83, loop=0, lossless=True)
        files.append(path)
    out = run_motion_calibration(tmp_path / "report", files)
    assert set(out["pass_rates"]) == set(KINDS)
    crit = out["section"]["criteria"]
    assert crit["motion_size"]["low"] < 1 < crit["motion_size"]["high"]
    assert out["pass_rates"]["frozen"]["fit"]["all"] == 0.0
    assert (tmp_path / "report" / "motion-calibration.md").read_text().count("| real_next |") == 2
    # the contact sheet of one emoji's kinds, each row labelled with what the criteria measured
    from animated_stickers.eval.motion_calibrate import kinds_sheet, load_window

    labels = kinds_sheet(load_window(files[0]), load_window(files[1]), tmp_path / "kinds.png", tile=48)
    assert len(labels) == 1 + len(KINDS) and labels[3].startswith("small: size 0.")
    with Image.open(tmp_path / "kinds.png") as im:
        assert im.width >= 8 * 48 and im.height >= (1 + len(KINDS)) * 48


# ---- relevance by label: the paraphrase test set ---------------------------------------------------

SRC = Path(__file__).resolve().parents[1] / "src" / "animated_stickers"


def _phrases(name: str) -> list[str]:
    data = json.loads((SRC / "eval" / name).read_text())
    return [p.replace("{s} ", "") for entry in data["prompts"] for p in entry["phrases"]]


def test_no_table_of_the_project_parses_a_paraphrase():
    from animated_stickers.motion.words import named_motion

    for phrase in _phrases("paraphrase_prompts.json"):
        assert named_motion(phrase) is None, phrase


def test_paraphrases_appear_in_no_other_file_of_the_project():
    """A test set: no caption template, training file or run-time table may hold its phrases."""
    phrases = [re.sub(r"\s+", " ", p.lower()) for p in _phrases("paraphrase_prompts.json")]
    for path in SRC.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".json", ".txt", ".md") and path.name != "paraphrase_prompts.json":
            text = re.sub(r"\s+", " ", path.read_text(errors="ignore").lower())
            hits = [p for p in phrases if p in text]
            assert not hits, (path, hits)


def test_labelled_prompts_carry_their_motion_and_cover_every_wording():
    from animated_stickers.eval.labelled import labelled_prompts, load_set

    for name in ("usual", "paraphrase"):
        motions = [m for m, _ in load_set(name)]
        assert motions == ["bouncing", "sliding", "spinning", "pulsing"]
        seen = {p for v in range(3) for p, _ in labelled_prompts("cat", name, v)}
        assert len(seen) == 12 and all(p.startswith("cat ") or p.startswith("a cat ") for p in seen)


def test_prompts_json_motion_label_is_read_not_parsed_from_the_prompt(tmp_path):
    """eval auto's relevance compares the measured motion with an entry's "motion" label; a prompt that
    names a motion but carries no label is not graded, and a bad label is one clear error."""
    from animated_stickers.errors import UserError
    from animated_stickers.eval.auto import judge_folder

    frames = [Image.fromarray(character(i / 8, bob=0.0, amp=0.0)) for i in range(8)]
    frames = [Image.fromarray(np.asarray(f)).rotate(45 * i) for i, f in enumerate(frames)]  # one full turn
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    frames[0].save(inputs / "a.png")
    frames[0].save(inputs / "b.png")
    for stem in ("a", "b"):
        frames[0].save(outputs / f"{stem}.webp", save_all=True, append_images=frames[1:], duration=125, loop=0,
                       lossless=True)
    entries = [{"image": "a.png", "prompt": "a critter", "motion": "spinning"},
               {"image": "b.png", "prompt": "a critter spinning around"}]  # no label: not graded
    (inputs / "prompts.json").write_text(json.dumps(entries))
    by = {r.stem: r for r in judge_folder(inputs, outputs)}
    assert by["a"].extra["motion"]["prompted"] == "spinning"
    assert by["a"].extra["motion"]["measured"] == "spinning"
    assert "motion" not in by["b"].extra
    entries[0]["motion"] = ["spinning"]
    (inputs / "prompts.json").write_text(json.dumps(entries))
    with pytest.raises(UserError, match="entry 0: 'motion' must be a short label"):
        judge_folder(inputs, outputs)
