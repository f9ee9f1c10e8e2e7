"""Export frame maths: premultiplied Lanczos resizing, canvas fitting, colour bleed, retiming, durations."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from animated_stickers.errors import UserError
from animated_stickers.export.imaging import bleed_colour, check_frames, fit_frames
from animated_stickers.export.inbetween import inbetween, pair_flows, warp
from animated_stickers.export.retime import durations_ms, pingpong_frames, retime
from animated_stickers.rgba import premultiply_image, resize_image
from export_fixtures import as_array, moving_disc


def red_disc(size: int = 32) -> Image.Image:
    """Pure red soft disc; hidden pixels are black, which a straight-alpha resize would smear in."""
    yy, xx = np.mgrid[:size, :size]
    alpha = np.clip((size * 0.35 - np.hypot(xx - size / 2, yy - size / 2)) / 2.0, 0, 1)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0] = np.where(alpha > 0, 255, 0)
    rgba[..., 3] = np.round(alpha * 255)
    return Image.fromarray(rgba, "RGBA")


def test_upscale_keeps_edge_colour_and_snaps_ringing():
    big = np.asarray(resize_image(red_disc(), (128, 128)))
    edge = big[..., 3] >= 8
    assert edge.sum() > 1000
    # Premultiplied filtering: no black from hidden pixels leaks into the visible edge.
    assert big[edge, 0].min() >= 250 and big[edge, 1:3].max() <= 5
    a = big[..., 3]
    assert not np.isin(a, [1, 2, 253, 254]).any()  # Lanczos ripples snapped away
    assert (a == 0).any() and (a == 255).any() and ((a > 2) & (a < 253)).sum() > 100  # soft edge kept


def test_fit_frames_long_side_and_square_padding():
    wide = [Image.new("RGBA", (100, 50), (10, 20, 30, 255))] * 2
    assert [f.size for f in fit_frames(wide, 512)] == [(512, 256)] * 2
    sq = np.asarray(fit_frames(wide, 512, square=True)[0])
    assert sq.shape == (512, 512, 4)
    assert sq[:120, :, 3].max() == 0 and sq[-120:, :, 3].max() == 0  # transparent bands above and below
    assert (sq[200:312, 10:500, 3] == 255).all()
    tall = fit_frames([Image.new("RGBA", (30, 90))], 512)[0]
    assert tall.size == (171, 512)


def test_bleed_colour_fills_hidden_colour_only():
    disc = red_disc(64)
    out = np.asarray(bleed_colour(disc))
    src = np.asarray(disc)
    assert np.array_equal(out[..., 3], src[..., 3])
    vis = src[..., 3] > 0
    assert np.array_equal(out[vis], src[vis])
    hidden = ~vis
    assert out[hidden, 0].min() >= 250  # was black, now the neighbours' red


def test_retime_blend_triples_frames_and_wraps_the_loop():
    src = moving_disc(32, 8)
    out, fps = retime(src, 8.0, 24.0, "blend")
    assert len(out) == 24 and fps == pytest.approx(24.0)
    a, s = as_array(out), as_array(src)
    assert np.array_equal(a[::3], s)  # the original frames are kept exactly
    pm = np.stack([premultiply_image(f) for f in src])
    expect_1 = (2 / 3) * pm[0] + (1 / 3) * pm[1]
    assert np.abs(premultiply_image(out[1]) - expect_1).max() < 2.5 / 255
    expect_23 = (1 / 3) * pm[7] + (2 / 3) * pm[0]  # last output frame blends towards frame 0: seamless loop
    assert np.abs(premultiply_image(out[23]) - expect_23).max() < 2.5 / 255


def test_flow_recovers_a_translation_and_interpolates_it():
    a = np.pad(premultiply_image(moving_disc(64, 8, soft=3.0)[2]), ((16, 16), (16, 16), (0, 0)))
    b = np.roll(a, (-3, 5), axis=(0, 1))  # content moves 5 px right, 3 px up (no wrap-around: padded)
    flows = pair_flows(a, b)
    disc = a[..., 3] > 0.5
    assert np.allclose(flows[0][disc].mean(0), [5, -3], atol=1.0)  # A(x) ~ B(x + F)
    assert np.allclose(flows[1][b[..., 3] > 0.5].mean(0), [-5, 3], atol=1.0)
    half = warp(a, np.broadcast_to(np.float32([-2.5, 1.5]), a.shape[:2] + (2,)).copy())  # true mid frame
    flow_err = np.abs(inbetween(a, b, flows, 0.5) - half).mean()
    fade_err = np.abs(0.5 * a + 0.5 * b - half).mean()
    assert flow_err < 0.25 * fade_err


def test_retime_flow_keeps_originals_and_makes_solid_inbetweens():
    src = moving_disc(64, 8, soft=2.0)  # the disc moves ~7 px per frame
    flow, _ = retime(src, 8.0, 24.0, "flow")
    fade, _ = retime(src, 8.0, 24.0, "blend")
    assert np.array_equal(as_array(flow)[::3], as_array(src))
    solid = (as_array(src)[0, ..., 3] > 230).sum()
    for k in (1, 2, 23):  # 23: between frame 7 and frame 0, the loop's seam
        flow_solid = (as_array(flow)[k, ..., 3] > 230).sum()
        fade_solid = (as_array(fade)[k, ..., 3] > 230).sum()
        assert flow_solid > 0.85 * solid > fade_solid  # one moved disc, not two half-transparent ones


def test_flow_retime_works_on_frames_smaller_than_a_flow_patch():
    src = moving_disc(6, 4)  # OpenCV DIS rejects images this small; the flow pads them
    out, _ = retime(src, 8.0, 16.0, "flow")
    assert len(out) == 8 and out[1].size == (6, 6)
    assert np.array_equal(as_array(out)[::2], as_array(src))


def test_retime_hold_repeats_and_downsampling_keeps_loop_length():
    src = moving_disc(16, 8)
    held, fps = retime(src, 8.0, 24.0, "hold")
    assert fps == pytest.approx(24.0)
    assert all(held[3 * k] is held[3 * k + 1] is held[3 * k + 2] for k in range(8))
    fewer, fps = retime(src, 8.0, 4.0)
    assert len(fewer) == 4 and fps == pytest.approx(4.0)  # still a 1 s loop


def test_pingpong_is_forward_then_back_without_repeated_ends():
    src = moving_disc(16, 8)
    seq = pingpong_frames(src)
    assert [src.index(f) for f in seq] == [0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4, 3, 2, 1]
    out, fps = retime(src, 8.0, 8.0, pingpong=True)
    assert len(out) == 14 and fps == 8.0


def test_durations_sum_exactly_in_format_units():
    d = durations_ms(24, 24.0)
    assert sum(d) == 1000 and set(d) <= {41, 42}
    g = durations_ms(24, 24.0, unit_ms=10)
    assert sum(g) == 1000 and all(x % 10 == 0 for x in g)
    assert sum(durations_ms(8, 8.0, unit_ms=10)) == 1000
    with pytest.raises(UserError, match="too fast"):
        durations_ms(10, 200.0, unit_ms=10)


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError, match="non-empty"):
        check_frames([])
    with pytest.raises(UserError, match=r"frames\[1\]"):
        check_frames([Image.new("RGBA", (4, 4)), "not an image"])
    with pytest.raises(UserError, match="differs"):
        check_frames([Image.new("RGBA", (4, 4)), Image.new("RGBA", (5, 4))])
    with pytest.raises(UserError, match="retime mode"):
        retime(moving_disc(8, 2), 8, 16, "pingpong")  # pingpong is a flag, not a mode
    with pytest.raises(UserError, match="fps"):
        retime(moving_disc(8, 2), 0, 16)
