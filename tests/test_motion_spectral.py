"""The spectral volume (motion/spectral.py): round trip, the still's zero, periodicity, any frame count."""

import cv2
import numpy as np
import pytest

from animated_stickers.motion import spectral
from animated_stickers.rgba import premultiply


def _loop_flows(n: int, h: int = 12, w: int = 16, harmonics: int = 3, cond: int = 0, seed: int = 0) -> np.ndarray:
    """Procedural per-pixel flows (n, h, w, 2) with only harmonics 1..`harmonics`, zero at frame `cond`."""
    rng = np.random.default_rng(seed)
    t = (np.arange(n) - cond) / n
    out = np.zeros((n, h, w, 2))
    for k in range(1, harmonics + 1):
        a, b = rng.normal(size=(2, h, w, 2)) * 3 / k
        c, s = (np.cos(2 * np.pi * k * t) - 1)[:, None, None, None], np.sin(2 * np.pi * k * t)[:, None, None, None]
        out += a * c + b * s
    return out.astype(np.float32)


@pytest.mark.parametrize("cond", [0, 5])
def test_round_trip_of_band_limited_flows(cond):
    flows = _loop_flows(16, harmonics=3, cond=cond)
    vol = spectral.spectral_volume(flows, harmonics=4, cond=cond)
    assert vol.shape == (16, 12, 16) and vol.dtype == np.float32
    back = spectral.render_flows(vol, 16, cond=cond)
    np.testing.assert_allclose(back, flows, atol=2e-5)


def test_truncation_keeps_the_lowest_harmonics_only():
    flows = _loop_flows(16, harmonics=6, seed=1)
    low = _loop_flows(16, harmonics=6, seed=1)
    vol = spectral.spectral_volume(flows, harmonics=2)
    # The same flows low-passed by the project's loop_smooth (real FFT) agree with the render.
    from animated_stickers.flow import loop_smooth

    np.testing.assert_allclose(spectral.render_flows(vol, 16), loop_smooth(low, 0, 2), atol=2e-5)


@pytest.mark.parametrize("frames", [8, 24, 48, 90])
def test_any_frame_count_zero_at_the_still_and_periodic(frames):
    vol = spectral.spectral_volume(_loop_flows(16, seed=2), harmonics=4)
    out = spectral.render_flows(vol, frames)
    assert out.shape == (frames, 12, 16, 2)
    assert not out[0].any()  # exactly zero, not nearly
    # The same field sampled at 16 and at `frames` agrees where the phases coincide (the loop is one field).
    ref = spectral.render_flows(vol, 16)
    for t in range(frames):
        if (t * 16) % frames == 0:
            np.testing.assert_allclose(out[t], ref[t * 16 // frames], atol=1e-4)
    # Periodic: frame T (one loop on) is frame 0, i.e. the step T-1 -> 0 is as small as the others.
    twice = spectral.render_flows(vol, 2 * frames)
    np.testing.assert_allclose(twice[::2], out, atol=1e-4)
    steps = np.abs(np.diff(np.concatenate([out, out[:1]]), axis=0)).max(axis=(1, 2, 3))
    assert steps[-1] <= steps.max() + 1e-6


def test_conditioning_frame_anywhere_is_exactly_zero():
    vol = spectral.spectral_volume(_loop_flows(16, seed=3), harmonics=4)
    out = spectral.render_flows(vol, 30, cond=7)
    assert not out[7].any() and out[6].any()
    # Rolling the still to frame 7 is the same loop shifted.
    np.testing.assert_allclose(np.roll(spectral.render_flows(vol, 30), 7, axis=0), out, atol=1e-5)


def test_canvas_units_and_resampling():
    flows = _loop_flows(16, h=16, w=16, seed=4)
    flows[:] = flows.mean(axis=(1, 2), keepdims=True)  # one displacement per frame, the same everywhere
    vol = spectral.spectral_volume(flows)
    big = spectral.render_flows(vol, 16, size=(32, 32))
    assert big.shape == (16, 32, 32, 2)
    # Pixels scale with the grid: a displacement of 1/16 of the canvas is 1 px at 16 px and 2 px at 32 px.
    np.testing.assert_allclose(big, 2 * flows[:, :1, :1].repeat(32, 1).repeat(32, 2), atol=1e-4)


def test_flip_mirrors_the_motion():
    flows = _loop_flows(16, seed=5)
    mirrored = flows[:, :, ::-1].copy()
    mirrored[..., 0] *= -1
    np.testing.assert_allclose(spectral.flip_volume(spectral.spectral_volume(flows)),
                               spectral.spectral_volume(mirrored), atol=1e-6)
    vol = spectral.spectral_volume(flows)
    np.testing.assert_array_equal(spectral.flip_volume(spectral.flip_volume(vol)), vol)


def test_normalise_round_trip_numpy_and_torch():
    import torch

    vol = spectral.spectral_volume(_loop_flows(16, seed=6))
    scales = spectral.fit_scales([vol])
    assert len(scales) == 4 and all(s > 0 for s in scales)
    z = spectral.normalise(vol, scales)
    assert np.quantile(np.abs(z), 0.97) == pytest.approx(1.0, abs=0.05)  # the quantile maps to 1
    np.testing.assert_allclose(spectral.denormalise(z, scales), vol, rtol=1e-4, atol=1e-7)
    zt = spectral.normalise(torch.from_numpy(vol)[None], scales)
    np.testing.assert_allclose(zt[0].numpy(), z, atol=1e-5)
    np.testing.assert_allclose(spectral.denormalise(zt, scales)[0].numpy(), vol, rtol=1e-4, atol=1e-7)


def bobbing_disc(amplitude: float = 4.0, radius: float = 12.0, n: int = 16, s: int = 64) -> np.ndarray:
    """A shaded disc bobbing up and down once per loop: straight RGBA float32 (n, s, s, 4) in [0, 1]."""
    yy, xx = np.mgrid[:s, :s]
    frames = []
    for t in range(n):
        cy = s / 2 + amplitude * np.sin(2 * np.pi * t / n)
        a = ((yy - cy) ** 2 + (xx - s / 2) ** 2 < radius ** 2).astype(np.float32)
        rgb = np.stack([a * (0.3 + 0.5 * xx / s), a * 0.6, a * (yy / s)], -1)
        frames.append(np.concatenate([rgb, a[..., None]], -1))
    return np.stack(frames).astype(np.float32)


def test_volume_of_a_moving_disc_from_dis_flow():
    """Measured on frames with OpenCV DIS (flow.py), as data prepare does: a disc bobbing up and down."""
    pm = premultiply(bobbing_disc())
    vol = spectral.volume_from_frames(pm, cond=0)
    amp = spectral.motion_amplitude(vol)
    assert amp[32, 32] > 2 * amp[2, 2]  # the disc moves, the far corner hardly
    flows = spectral.render_flows(vol, 16)
    # Frame 4 (a quarter loop): the disc is 4 px lower, so frame 4 at x looks like the still at x - (0, 4).
    assert flows[4, 32, 32, 1] == pytest.approx(-4, abs=1.0)
    assert abs(flows[4, 32, 32, 0]) < 1.0


def _pulse(h: int = 16, w: int = 16) -> np.ndarray:
    """A volume of a pure radial pulse (opposite sides move oppositely: a uniform sum of C_1 is 0)."""
    py, px = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    vol = np.zeros((16, h, w), np.float32)
    vol[0], vol[1], vol[2], vol[3] = 0.01 * px, 0.02 * px, 0.01 * py, 0.02 * py  # C_1 = (1 + 2i) 0.01 p
    vol[4], vol[6] = 0.003 * px, -0.003 * py  # a little second harmonic
    return vol


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_canonical_phase_is_invariant_to_a_loop_shift(seed):
    rng = np.random.default_rng(seed)
    vols = [rng.normal(size=(16, 12, 16)).astype(np.float32) * 0.01, _pulse()]
    for vol in vols:
        canon = spectral.canonical_phase(vol)
        assert np.abs(canon - vol).max() > 1e-4  # it did turn the volume
        for delta in rng.uniform(0, 1, 4):  # a shift by delta: C_k exp(2 pi i k delta)
            shifted = spectral.rotate_phase(vol, -2 * np.pi * delta)
            np.testing.assert_allclose(spectral.canonical_phase(shifted), canon, atol=1e-6)
        assert abs(np.angle(np.exp(1j * spectral.canonical_angle(canon)))) < 1e-5  # canonical is a fixed point
    zero = np.zeros((16, 8, 8), np.float32)
    np.testing.assert_array_equal(spectral.canonical_phase(zero), zero)


def test_canonical_phase_of_the_same_loop_measured_from_another_frame():
    # The same loop measured relative to frame 0 and to frame 5 (its flows minus frame 5's): different
    # volumes (phases), one canonical volume.
    flows = _loop_flows(16, harmonics=3, cond=0, seed=4)
    v0 = spectral.spectral_volume(flows, harmonics=4, cond=0)
    v5 = spectral.spectral_volume(flows - flows[5], harmonics=4, cond=5)
    assert np.abs(v0 - v5).max() > 1e-3
    np.testing.assert_allclose(spectral.rotate_phase(v0, -2 * np.pi * 5 / 16), v5, atol=1e-6)
    np.testing.assert_allclose(spectral.canonical_phase(v5), spectral.canonical_phase(v0), atol=1e-6)


@pytest.mark.parametrize("frames", [8, 24])
def test_a_canonical_volume_renders_the_still_exactly_at_frame_zero(frames):
    vol = spectral.canonical_phase(spectral.spectral_volume(_loop_flows(16, seed=2), harmonics=4))
    flows = spectral.render_flows(vol, frames)
    assert np.all(flows[0] == 0)  # the still, exactly
    assert np.abs(flows[1:]).max() > 0.1
    # The same loop as before, started at the canonical phase: the motion's amplitude map is unchanged.
    np.testing.assert_allclose(spectral.motion_amplitude(vol),
                               spectral.motion_amplitude(spectral.spectral_volume(_loop_flows(16, seed=2))),
                               rtol=1e-5, atol=1e-7)


def test_consensus_of_phases_measured_from_different_frames_is_the_canonical_loop():
    # The same loop measured against four frames, each with its own flow noise: one target, close to the
    # canonical volume of the noise-free loop and closer than any single noisy measurement.
    flows = _loop_flows(16, harmonics=3, cond=0, seed=7)
    clean = spectral.canonical_phase(spectral.spectral_volume(flows, harmonics=4, cond=0))
    rng = np.random.default_rng(0)
    noisy = [spectral.spectral_volume(flows - flows[c] + rng.normal(0, 0.3, flows.shape).astype(np.float32),
                                      harmonics=4, cond=c) for c in (0, 3, 6, 11)]
    consensus = spectral.consensus_volume(np.stack(noisy))
    err = lambda v: float(np.sqrt(((v - clean) ** 2).mean()))  # noqa: E731
    singles = [err(spectral.canonical_phase(v)) for v in noisy]
    assert err(consensus) < min(singles) and err(consensus) < 0.2 * float(np.sqrt((clean ** 2).mean()))
    # it is itself canonical: shifting its loop changes nothing
    np.testing.assert_allclose(spectral.canonical_phase(spectral.rotate_phase(consensus, 1.3)), consensus, atol=1e-6)


def test_align_phase_finds_the_loop_shift():
    v = spectral.spectral_volume(_loop_flows(16, harmonics=3, cond=0, seed=2), harmonics=4)
    shifted = spectral.rotate_phase(v, 2 * np.pi * 37 / 256)  # a shift on align_phase's grid of 256 angles
    np.testing.assert_allclose(spectral.align_phase(shifted, v), v, atol=1e-5)


def test_smooth_field_removes_grid_noise_and_keeps_smooth_motion():
    v = spectral.spectral_volume(_loop_flows(16, h=32, w=32, harmonics=2, seed=3), harmonics=4)
    smooth = np.stack([cv2.GaussianBlur(c, (0, 0), 4.0) for c in v])  # a smooth field
    noisy = smooth + np.random.default_rng(0).normal(0, 0.5 * np.abs(smooth).mean(), smooth.shape).astype(np.float32)
    out = spectral.smooth_field(noisy)
    assert np.abs(out - smooth)[:, 4:-4, 4:-4].mean() < 0.5 * np.abs(noisy - smooth).mean()
    assert spectral.smooth_field(noisy, sigma=0) is noisy
    cut = np.zeros(v.shape[1:], np.float32)
    cut[:, :16] = 1
    assert not spectral.smooth_field(noisy, cut)[:, :, 16:].any()  # nothing spreads past the support


def test_limit_folding_scales_a_tearing_field_and_leaves_a_gentle_one():
    t = np.arange(16)[:, None, None]
    bob = np.stack(np.broadcast_arrays(0 * t, 2 * np.sin(2 * np.pi * t / 16) + 0 * np.ones((1, 32, 32))), -1)
    gentle = spectral.spectral_volume(bob.astype(np.float32), harmonics=4)  # the whole sticker bobs: no strain
    same, scale = spectral.limit_folding(gentle)
    assert scale == 1.0 and same is gentle
    # a field whose neighbouring pixels move far apart (a spin the model got wrong): scaled until the warp
    # x + D(x) keeps a positive Jacobian at every phase
    wild = spectral.spectral_volume(_loop_flows(16, h=32, w=32, harmonics=3, seed=1) * 3, harmonics=4)
    limited, scale = spectral.limit_folding(wild, max_strain=0.4)
    assert 0 < scale < 1
    np.testing.assert_allclose(limited, wild * scale, rtol=1e-6)
    flows = spectral.render_flows(limited, 16)
    gx, gy = (np.gradient(flows[..., c], axis=(1, 2)) for c in (0, 1))  # d/dy, d/dx of each component
    det = (1 + gx[1]) * (1 + gy[0]) - gx[0] * gy[1]
    assert det.min() > 0 and max(np.abs(g).max() for g in (*gx, *gy)) <= 0.4 + 1e-5
    assert spectral.limit_folding(wild)[1] > scale  # the default allows what real loops do (MAX_STRAIN)


def test_canonical_phase_reads_the_fundamental_when_harmonic_1_is_empty():
    """A bounce in arcs or a 2-cycle pulse has no first harmonic: the phase comes from harmonic 2, so shifted
    copies and the same motion at another size get one target (before, rounding noise chose the phase)."""
    vol = np.zeros((16, 12, 16), np.float32)
    py, px = np.meshgrid(np.linspace(-0.5, 0.5, 12), np.linspace(-0.5, 0.5, 16), indexing="ij")
    vol[4], vol[5], vol[6], vol[7] = 0.01 * px, 0.02 * px, 0.01 * py, 0.02 * py  # C_2 only: a 2-cycle pulse
    vol[0] = 1e-12 * py  # rounding noise in harmonic 1
    canon = spectral.canonical_phase(vol)
    for delta in (0.1, 0.37, 0.8):
        np.testing.assert_allclose(spectral.canonical_phase(spectral.rotate_phase(vol, -2 * np.pi * delta)), canon,
                                   atol=1e-7)
    bigger = spectral.rotate_phase(3 * vol, 1.1)  # the same motion, larger, from another loop position
    bigger[0] = -1e-12 * px  # other noise
    np.testing.assert_allclose(spectral.canonical_phase(bigger), 3 * canon, atol=1e-7)


def test_limit_folding_counts_strain_only_where_the_sticker_shows():
    """A spin cut to the sticker's support drops to zero at the cut's edge, where nothing shows: that edge
    must not count as tearing (it had shrunk a model's spin 20-fold)."""
    h = 32
    py, px = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(h) - (h - 1) / 2, indexing="ij")
    disc = (np.hypot(px, py) < 8).astype(np.float32)  # the sticker on the field's grid
    vol = np.zeros((16, h, h), np.float32)
    # a rotation by up to ~30 degrees back and forth: D = (R - I) x, first harmonic only (canvas units)
    theta = 0.5
    vol[1] = ((np.cos(theta) - 1) * px - np.sin(theta) * py) / h  # Im C_1.x
    vol[3] = (np.sin(theta) * px + (np.cos(theta) - 1) * py) / h  # Im C_1.y
    cut = vol * (np.hypot(px, py) < 12)  # cut 4 px outside the disc (SUPPORT_DILATE): a cliff of ~6 px per px
    assert spectral.limit_folding(cut)[1] < 0.5  # counting the cliff: scaled down
    same, scale = spectral.limit_folding(cut, alpha=disc)
    assert scale == 1.0 and same is cut  # where the disc shows, the rotation's strain is well below 2
