"""Automatic measures on synthetic animations made here: good motion passes, each defect fails its own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from animated_stickers.errors import UserError
from animated_stickers.eval.auto import (
    StickerResult,
    compare_motion_stats,
    failed_everywhere,
    judge,
    summarise,
)
from animated_stickers.eval.broken import add_white_outline, colour_blobs, outline_lag
from animated_stickers.eval.calibrate import choose_threshold
from animated_stickers.eval.thresholds import Threshold, load_thresholds

T, S, COND = 8, 128, 3


def disc_frames(centres, radii=None, size=S) -> np.ndarray:
    """Soft-edged shaded disc with a dark stripe, one frame per centre (straight RGBA float)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = []
    for i, (cy, cx) in enumerate(centres):
        ry, rx = radii[i] if radii is not None else (24.0, 24.0)
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        alpha = np.clip((1.0 - d) * max(ry, rx) / 1.5, 0, 1)  # ~1.5 px anti-aliased edge
        shade = np.clip(1.0 - 0.5 * ((yy - cy + ry) / (2 * ry)), 0, 1)  # smooth vertical gradient
        stripe = np.abs(xx - cx) < 3  # linework that moves with the body
        rgb = np.stack([shade * 0.9, shade * 0.6, 0.2 + 0 * shade], -1)
        rgb[stripe] = 0.1
        frames.append(np.concatenate([rgb, alpha[..., None]], -1))
    return np.stack(frames).astype(np.float32)


def circle_path(radius=8.0, centre=(64.0, 64.0)) -> list[tuple[float, float]]:
    """A closed loop: eight points around a circle (the last leads back to the first)."""
    ang = 2 * np.pi * np.arange(T) / T
    return [(centre[0] + radius * np.sin(a), centre[1] + radius * np.cos(a)) for a in ang]


@pytest.fixture(scope="module")
def th():
    return load_thresholds()


@pytest.fixture(scope="module")
def good():
    return disc_frames(circle_path())


def verdicts(frames, image, th):
    return judge(frames, image, th, cond=COND)


def test_moving_disc_passes_every_criterion(good, th):
    res = verdicts(good, good[COND], th)
    failed = {k: v["value"] for k, v in res.items() if not v["pass"]}
    assert failed == {}


def test_static_copy_fails_existence_only_motion(good, th):
    static = np.repeat(good[COND : COND + 1], T, axis=0)
    res = verdicts(static, good[COND], th)
    assert res["existence"]["value"] == 0.0 and not res["existence"]["pass"]
    assert res["identity"]["pass"]  # a copy of the input does reproduce it


def test_per_frame_noise_fails_distortions(good, th):
    rng = np.random.default_rng(0)
    noisy = good.copy()
    noisy[..., :3] = np.clip(noisy[..., :3] + rng.normal(0, 0.06, noisy[..., :3].shape), 0, 1)
    res = verdicts(noisy, good[COND], th)
    assert not res["distortions"]["pass"]
    assert res["distortions"]["value"] > 5 * verdicts(good, good[COND], th)["distortions"]["value"] + 0.01


def test_cut_loop_fails_looping(th):
    # A steady drift: every step is 4 px, but last -> first jumps 28 px back.
    drift = disc_frames([(64.0, 36.0 + 8 * i) for i in range(T)])
    res = verdicts(drift, drift[COND], th)
    assert not res["looping"]["pass"]
    assert res["looping"]["value"] > 3


def test_disc_touching_border_fails_clipping(th):
    centred = disc_frames(circle_path(6.0))
    # Same loop, but shifted so the disc runs over the right edge in some frames.
    edge = disc_frames(circle_path(6.0, centre=(64.0, 100.0)))
    assert verdicts(centred, centred[COND], th)["clipping"]["pass"]
    res = verdicts(edge, centred[COND], th)
    assert not res["clipping"]["pass"] and res["clipping"]["value"] > 0


def test_input_touching_border_is_not_clipping(th):
    # The input itself is cut by the canvas: frames touching where it already touches are fine.
    edge = disc_frames([(64.0, 112.0)] * T)
    edge[:, :, -1] = edge[:, :, -2]
    assert verdicts(edge, edge[COND], th)["clipping"]["value"] == 0.0


def test_alpha_speckle_fails_background(good, th):
    rng = np.random.default_rng(1)
    dirty = good.copy()
    speck = rng.random(dirty.shape[:3]) < 0.01
    dirty[..., 3] = np.maximum(dirty[..., 3], speck * 0.8)
    res = verdicts(dirty, good[COND], th)
    assert not res["background"]["pass"]
    assert verdicts(good, good[COND], th)["background"]["value"] == pytest.approx(0.0, abs=1e-4)


def test_identity_fails_when_conditioning_frame_differs(good, th):
    other = disc_frames([(40.0, 40.0)] * T, radii=[(14.0, 30.0)] * T)
    res = verdicts(good, other[0], th)
    assert not res["identity"]["pass"]
    assert verdicts(good, good[COND], th)["identity"]["value"] == 100.0


def test_morphing_fails_consistency(good, th):
    # The body flips between a tall and a wide ellipse every frame (the cond frame stays round): not "in
    # proportion" and not consistent from frame to frame.
    radii = [(24.0, 24.0) if i == COND else ((12.0, 40.0) if i % 2 else (40.0, 12.0)) for i in range(T)]
    morph = disc_frames(circle_path(), radii=radii)
    res = verdicts(morph, good[COND], th)
    assert not res["consistency"]["pass"]
    assert res["consistency"]["value"] < verdicts(good, good[COND], th)["consistency"]["value"]


def test_jittery_path_fails_motion_curves(th):
    rng = np.random.default_rng(2)
    jitter = [(64 + rng.uniform(-12, 12), 64 + rng.uniform(-12, 12)) for _ in range(T)]
    smooth = disc_frames(circle_path(12.0))
    jerky = disc_frames(jitter)
    assert verdicts(smooth, smooth[COND], th)["motion_curves"]["pass"]
    res = verdicts(jerky, jerky[COND], th)
    assert not res["motion_curves"]["pass"]


def test_outline_left_behind_fails_outline(good, th):
    outlined = add_white_outline(good)
    assert verdicts(outlined, outlined[COND], th)["outline"]["pass"]
    lagging = outline_lag(good, COND, np.random.default_rng(0))
    res = verdicts(lagging, outlined[COND], th)
    assert not res["outline"]["pass"]


def test_colour_blobs_fail_blobs_only_where_the_input_cannot_explain_them(good, th):
    # The moving disc is explained by the flow (value 0); six small discs of foreign colour per frame
    # on the body's edge (each ~0.8% of this small body) are not, and they fail `blobs`.
    assert verdicts(good, good[COND], th)["blobs"]["value"] == pytest.approx(0.0, abs=1e-3)
    smeared = colour_blobs(good, COND, np.random.default_rng(3), radius=0.02)
    res = verdicts(smeared, good[COND], th)
    assert not res["blobs"]["pass"] and res["blobs"]["details"]["frames_with_blobs"] == T - 1
    # One large, coherent new part (a second body stepping in, as a paw does in a real clip) is motion,
    # not a blob: bigger than any blob, it is not counted (only slivers of its edge where the flow tears).
    big = good.copy()
    big[5] = np.maximum(big[5], disc_frames([(20.0, 100.0)], radii=[(14.0, 14.0)])[0])
    stepped_in = verdicts(big, good[COND], th)["blobs"]
    assert stepped_in["pass"] and stepped_in["value"] < 0.2 * res["blobs"]["value"]


def test_summary_keeps_the_nine_beside_all_criteria(th):
    ok = {n: {"value": 1.0, "threshold": 0.0, "pass": True, "details": {}} for n in th}
    blobby = {n: dict(v, **{"pass": n != "blobs"}) for n, v in ok.items()}
    s = summarise([StickerResult("a", ok), StickerResult("b", blobby)], th)
    assert s["all_criteria"]["passed"] == 1 and s["all_nine"]["passed"] == 2


def test_different_sizes_and_uint8_are_brought_to_one_canvas(good, th):
    # Output at 256 px uint8 vs a 128 px input: same verdicts as at one size.
    big = np.repeat(np.repeat(good, 2, axis=1), 2, axis=2)
    res = judge(
        (big * 255).round().astype(np.uint8), (good[COND] * 255).round().astype(np.uint8), th, cond=COND
    )
    assert res["identity"]["value"] > 35
    assert all(v["pass"] for v in res.values())


def test_measures_on_two_frames_do_not_crash_and_fail_undefined(good, th):
    res = verdicts(good[:2], good[COND], th)
    assert res["looping"]["value"] is None and not res["looping"]["pass"]
    assert res["motion_curves"]["value"] is None


def test_summary_arithmetic(th):
    ok = {n: {"value": 1.0, "threshold": 0.0, "pass": True, "details": {}} for n in th}
    half = {n: dict(v, **{"pass": n != "looping"}) for n, v in ok.items()}
    results = [StickerResult("a", ok), StickerResult("b", half), failed_everywhere("c", "missing output", th)]
    s = summarise(results, th)
    assert s["n"] == 3 and s["n_failed_to_read"] == 1
    assert s["criteria"]["existence"]["passed"] == 2
    assert s["criteria"]["existence"]["pass_rate"] == pytest.approx(2 / 3)
    assert s["criteria"]["looping"]["passed"] == 1
    assert s["all_criteria"]["passed"] == 1
    json.dumps(s, allow_nan=False)


def test_compare_motion_stats(good):
    static = np.repeat(good[COND : COND + 1], T, axis=0)
    stats = compare_motion_stats({"x": static, "y": good}, {"x": good, "y": good, "z": good})
    assert stats["n"] == 2
    rows = {r["stem"]: r for r in stats["per_sticker"]}
    assert rows["x"]["motion_generated"] == 0.0 and rows["x"]["motion_real"] > 0
    assert rows["y"]["all_frames_psnr"] == 100.0
    assert rows["x"]["middle_psnr"] == 100.0  # same middle frame, different motion
    assert stats["motion_ks"] == pytest.approx(0.5)
    assert stats["motion_ratio_median"] == pytest.approx(0.5)


def test_choose_threshold_separates_and_sits_in_the_gap():
    thr, acc = choose_threshold([0.8, 0.9, 1.0], [0.1, 0.2], higher_is_better=True)
    assert acc == 1.0 and 0.2 < thr < 0.8
    thr, acc = choose_threshold([1.0, 1.2], [5.0, 6.0, None], higher_is_better=False)
    assert acc == 1.0 and 1.2 < thr < 5.0
    assert Threshold(thr, False).passes(1.1) and not Threshold(thr, False).passes(None)


def test_bad_thresholds_file_is_one_line_error(tmp_path):
    p = tmp_path / "t.json"
    p.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_thresholds(p)
    p.write_text(json.dumps({"criteria": {"existence": {"threshold": 0.1}}}))
    with pytest.raises(UserError, match="consistency"):
        load_thresholds(p)


def test_colour_drift_is_zero_for_a_moving_same_colour_body_and_large_for_recoloured_frames():
    from animated_stickers.eval.measures import colour_drift, make_clip

    size, t = 32, 8
    yy, xx = np.mgrid[0:size, 0:size]
    frames = np.zeros((t, size, size, 4), np.float32)
    for i in range(t):  # a red disc sliding right: motion, but the colour mix never changes
        disc = (yy - 16) ** 2 + (xx - 10 - i) ** 2 < 36
        frames[i][disc] = [1.0, 0.1, 0.1, 1.0]
    moving = make_clip(frames, frames[3], 3)
    assert colour_drift(moving) < 1e-6
    recoloured = frames.copy()
    recoloured[6][..., :3] = np.where(recoloured[6][..., 3:] > 0, [0.1, 0.1, 1.0], 0)  # frame 6 turns blue
    assert colour_drift(make_clip(recoloured, frames[3], 3)) > 0.99
