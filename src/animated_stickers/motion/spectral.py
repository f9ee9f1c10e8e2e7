"""The motion target as a spectral volume (Generative Image Dynamics, Li et al., CVPR 2024, section 3).

A looping motion is a per-pixel displacement D(x, phi) over the loop phase phi in [0, 1). Here D is the
*backward* flow of the project's warp render (flow.py `flows_to_frame`, `warp_along`): frame phi at x
looks like the conditioning still at x + D(x, phi). Over one loop D is periodic, so its temporal Fourier
series describes it; a bounce, a sway or a wave lives in the lowest few harmonics (GID's ablation: K = 4
is close to K = 16). The spectral volume keeps harmonics 1..K:

    C_k(x) = 1/N * sum_t D(x, t/N) * exp(-2 pi i k t/N)        (phases measured from the still, t = 0)
    volume (4K, h, w), channel 4(k-1) + [0, 1, 2, 3] = [Re C_k.x, Im C_k.x, Re C_k.y, Im C_k.y]

in *canvas units* (a displacement of 1 is the canvas width for x, its height for y), so a volume does
not depend on the grid it was measured on. The DC term is not stored: it is fixed by the rule that the
still does not move, D(x, 0) = 0, which the inverse applies exactly:

    D(x, phi) = sum_k 2 Re(C_k(x) (exp(2 pi i k phi) - 1))

so one volume renders any number of frames T (phi = (t - cond) / T; frame `cond`, 0 by default, is
exactly zero) and the loop closes by construction (phi and phi + 1 are the same frame).

Normalisation (what a network sees; `normalise` / `denormalise`): GID's frequency-adaptive scaling.
Each harmonic k is divided by its own scale s_k (by default a high quantile of |coefficient| over the
training data, `fit_scales`), then a sign-preserving power gamma (0.5) spreads the heavy-tailed
amplitudes: z = sign(c) |c / s_k| ** gamma. Higher harmonics are smaller, so without s_k a model's
error would be dominated by the first; the power keeps the many near-still pixels from being all zeros
to the network while small errors near zero map back to tiny motions (|z| ** 2).

Canonical phase (`canonical_phase`; training targets, issue 28): which loop position the still was taken
at is arbitrary, and moving it by delta multiplies C_k by exp(2 pi i k delta), so the same still has
targets of every phase and the MSE-optimal prediction is ~0. The canonical volume turns every harmonic k
by exp(-i k psi), psi fixed by the volume itself so that any shifted copy maps to the same volume (unique
mod 2 pi: harmonic 1 turns once per loop). It is applied to canvas units, before `normalise` (the signed
power acts on Re and Im separately and does not commute with a rotation). A canonical volume renders like
any other (`render_flows`: frame `cond` exactly zero) but the loop then starts at the canonical phase, not
at the clip's: the still is placed where the weighted displacement of the loop's fundamental (its lowest
strong harmonic) crosses zero, rising.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..flow import DEFAULT_PRESET, flows_to_frame

HARMONICS = 4  # K: GID's choice
LOOP_FRAMES = 16  # frames evenly over one loop that the target is measured from (Nyquist: 8 harmonics)
SIZE = 64  # px: the grid of the stored target
GAMMA = 0.5  # the sign-preserving power of `normalise`
# Per-harmonic scales (canvas units) when none were fitted: the 0.97 quantile of |coefficient| over 512
# stored phases of the Fluent training clips (2026-12-07, `fit_scales`; a model keeps its own in its config).
DEFAULT_SCALES = (0.0168, 0.0108, 0.0076, 0.0058)


def channels(harmonics: int = HARMONICS) -> int:
    """Channels of a spectral volume with `harmonics` harmonics: 4 per harmonic (Re/Im of x and y)."""
    return 4 * harmonics


def spectral_volume(flows: np.ndarray, harmonics: int = HARMONICS, cond: int = 0) -> np.ndarray:
    """Flows (N, h, w, 2) in pixels over one loop (frame t at phase t / N; frame `cond` is the still) ->
    the spectral volume (4K, h, w) float32 in canvas units, phases measured from frame `cond`."""
    n, h, w, _ = flows.shape
    if not 1 <= harmonics <= n // 2:
        raise ValueError(f"harmonics={harmonics}: expected 1 to {n // 2} for {n} loop frames")
    d = flows.astype(np.float64) / np.array([w, h], np.float64)  # (N, h, w, 2) canvas units
    d = np.roll(d, -cond, axis=0)  # the still at t = 0
    coef = np.fft.fft(d, axis=0)[1:harmonics + 1] / n  # (K, h, w, 2) complex
    parts = np.stack([coef[..., 0].real, coef[..., 0].imag, coef[..., 1].real, coef[..., 1].imag], axis=1)
    return parts.reshape(4 * harmonics, h, w).astype(np.float32)  # (K, 4, h, w) -> (4K, h, w)


def _complex(volume: np.ndarray) -> np.ndarray:
    """(4K, h, w) -> (K, h, w, 2) complex128: C_k for x and y."""
    c, h, w = volume.shape
    if c % 4:
        raise ValueError(f"spectral volume with {c} channels: expected 4 per harmonic")
    v = volume.astype(np.float64).reshape(c // 4, 4, h, w)
    return np.stack([v[:, 0] + 1j * v[:, 1], v[:, 2] + 1j * v[:, 3]], axis=-1)


def render_flows(volume: np.ndarray, num_frames: int, cond: int = 0, size: tuple[int, int] | None = None
                 ) -> np.ndarray:
    """A spectral volume (4K, h, w) -> flows (T, h', w', 2) float32 in pixels of the (h', w') grid (default
    the volume's own), for any frame count T; frame `cond` is exactly zero and frame T would be frame 0."""
    if num_frames < 1 or not 0 <= cond < num_frames:
        raise ValueError(f"num_frames={num_frames}, cond={cond}: expected T >= 1 and 0 <= cond < T")
    coef = _complex(volume)  # (K, h, w, 2)
    k = np.arange(1, coef.shape[0] + 1)
    phi = (np.arange(num_frames) - cond) / num_frames  # (T,)
    angle = 2 * np.pi * np.outer(phi, k)  # (T, K)
    basis = (np.cos(angle) - 1) + 1j * np.sin(angle)  # exp(2 pi i k phi) - 1: exactly 0 at phi = 0
    d = 2 * np.einsum("tk,khwc->thwc", basis, coef).real  # (T, h, w, 2) canvas units
    h, w = volume.shape[1:] if size is None else size
    if (h, w) != volume.shape[1:]:
        import cv2  # noqa: PLC0415 (only when resampling)

        d = np.stack([cv2.resize(f.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) for f in d])
    return (d * np.array([w, h])).astype(np.float32)


def volume_from_frames(frames: np.ndarray, cond: int = 0, harmonics: int = HARMONICS,
                       preset: str = DEFAULT_PRESET) -> np.ndarray:
    """Premultiplied frames (N, h, w, 4) over one loop -> the spectral volume of their motion relative to
    frame `cond` (DIS flow from every frame to it, flow.py)."""
    return spectral_volume(flows_to_frame(frames, cond, preset), harmonics, cond)


# Pixel weights of `canonical_phase`'s linear functional, per axis, in canvas coordinates p about the centre:
# g_x = 1 + p_x - p_y / 2, g_y = 1 + p_x + p_y / 2. Uniform weights alone cancel for a pulse (opposite sides
# move oppositely); these are non-zero against each of translation x and y, scale, rotation and both shears.
CANONICAL_WEIGHTS = ((1.0, 1.0, -0.5), (1.0, 1.0, 0.5))  # (1, p_x, p_y) coefficients of g_x and g_y


FUNDAMENTAL_SHARE = 0.25  # `canonical_angle`: the lowest harmonic with |L_k| at least this share of the largest


def canonical_angle(volume: np.ndarray) -> float:
    """psi (radians) of `canonical_phase`. Per harmonic k, L_k = sum over pixels of a_k(x) (g_x C_k.x + g_y C_k.y),
    a_k(x) = |C_k(x)| (amplitude weight); psi is read off the loop's fundamental, the lowest k with |L_k| >=
    FUNDAMENTAL_SHARE of the largest: psi = (angle(L_k) + pi / 2) / k. A loop shift by delta turns every L_k by
    2 pi k delta and leaves their sizes, so psi moves by 2 pi delta exactly (mod 2 pi / k, which for a loop of
    period 1 / k is no change). Reading harmonic 1 alone failed whenever it is empty: a bounce in arcs, a
    2-cycle pulse or spin (measured: their canonical targets took the phase of rounding noise, so the same
    motion at two sizes got unrelated targets and the model learned their average, no motion). 0 for a
    volume without motion."""
    coef = _complex(volume)  # (K, h, w, 2)
    h, w = coef.shape[1:3]
    py, px = np.meshgrid((np.arange(h) + 0.5) / h - 0.5, (np.arange(w) + 0.5) / w - 0.5, indexing="ij")
    g = [a + b * px + c * py for a, b, c in CANONICAL_WEIGHTS]
    amp = np.sqrt((np.abs(coef) ** 2).sum(-1))  # (K, h, w)
    totals = (amp * (g[0] * coef[..., 0] + g[1] * coef[..., 1])).sum(axis=(1, 2))  # (K,) complex L_k
    size = np.abs(totals)
    if not size.max() > 1e-9 * max(float((amp * amp).sum()), 1e-30):  # no motion (or not finite): leave as is
        return 0.0
    k = int(np.argmax(size >= FUNDAMENTAL_SHARE * size.max()))  # the lowest strong harmonic (0-based)
    return float((np.angle(totals[k]) + np.pi / 2) / (k + 1))


def rotate_phase(volume: np.ndarray, psi: float) -> np.ndarray:
    """Harmonic k of a canvas-unit volume (4K, h, w) times exp(-i k psi): the same loop started psi / 2 pi
    of a loop later (a loop shift by delta is rotate_phase(v, -2 pi delta))."""
    coef = _complex(volume)  # (K, h, w, 2)
    k = np.arange(1, coef.shape[0] + 1)
    coef = coef * np.exp(-1j * k * psi)[:, None, None, None]
    parts = np.stack([coef[..., 0].real, coef[..., 0].imag, coef[..., 1].real, coef[..., 1].imag], axis=1)
    return parts.reshape(volume.shape).astype(np.float32)


def canonical_phase(volume: np.ndarray) -> np.ndarray:
    """The canonical-phase copy of a canvas-unit (not normalised) volume (4K, h, w): every harmonic k turned
    by exp(-i k psi), psi = `canonical_angle`, so canonical_phase(rotate_phase(v, d)) == canonical_phase(v)
    for any d. Afterwards the fundamental's weighted sum L_k is -i |L_k|: the loop starts at its zero crossing."""
    return rotate_phase(volume, canonical_angle(volume))


def flip_volume(volume: np.ndarray) -> np.ndarray:
    """The volume of the horizontally mirrored clip: mirror the grid and negate the x components."""
    out = volume[..., ::-1].copy()
    out.reshape(-1, 4, *volume.shape[1:])[:, :2] *= -1  # Re/Im of C_k.x
    return out


def harmonic_scales(scales: Sequence[float], harmonics: int) -> np.ndarray:
    """(4K, 1, 1) per-channel scales from per-harmonic ones (the last one repeats for extra harmonics)."""
    s = [float(scales[min(k, len(scales) - 1)]) for k in range(harmonics)]
    if min(s) <= 0:
        raise ValueError(f"spectral scales {s}: expected positive numbers")
    return np.repeat(np.array(s, np.float32), 4)[:, None, None]


def normalise(volume, scales: Sequence[float] = DEFAULT_SCALES, gamma: float = GAMMA):
    """Canvas-unit volume (4K, h, w) (numpy or torch, any leading batch dims) -> the network's space:
    sign(c) |c / s_k| ** gamma."""
    s = harmonic_scales(scales, volume.shape[-3] // 4)
    if not isinstance(volume, np.ndarray):
        s = _like(s, volume)
    x = volume / s
    return x.sign() * x.abs() ** gamma if not isinstance(x, np.ndarray) else np.sign(x) * np.abs(x) ** gamma


def denormalise(z, scales: Sequence[float] = DEFAULT_SCALES, gamma: float = GAMMA):
    """The inverse of `normalise`: sign(z) |z| ** (1 / gamma) * s_k."""
    s = harmonic_scales(scales, z.shape[-3] // 4)
    if not isinstance(z, np.ndarray):
        s = _like(s, z)
        return z.sign() * z.abs() ** (1 / gamma) * s
    return np.sign(z) * np.abs(z) ** (1 / gamma) * s


def _like(a: np.ndarray, t):
    import torch  # noqa: PLC0415 (numpy callers never import torch)

    return torch.as_tensor(a, dtype=t.dtype, device=t.device)


def fit_scales(volumes: Sequence[np.ndarray], quantile: float = 0.97, floor: float = 1e-4) -> list[float]:
    """Per-harmonic scales: the `quantile` of |Re|, |Im| of x and y over all pixels of `volumes` (4K, h, w)."""
    stacked = np.concatenate([np.abs(v).reshape(v.shape[0] // 4, -1) for v in volumes], axis=1)  # (K, 4*h*w*N)
    return [max(float(np.quantile(row, quantile)), floor) for row in stacked]


def motion_amplitude(volume: np.ndarray) -> np.ndarray:
    """(h, w) RMS displacement over the loop about its mean, in canvas units: sqrt(2 sum_k |C_k|^2) over x and
    y (Parseval), a cheap map of where things move."""
    coef = _complex(volume)
    return np.sqrt(2 * (np.abs(coef) ** 2).sum(axis=(0, 3))).astype(np.float32)


def align_phase(volume: np.ndarray, ref: np.ndarray, samples: int = 256) -> np.ndarray:
    """`volume` (4K, h, w) turned by the loop shift that matches it best to `ref` (same shape): the shift
    maximising sum_x <rotate_phase(volume, psi), ref>, which is sum_k Re(P_k exp(-i k psi)) with P_k the
    per-harmonic inner product, so it is read off `samples` angles without re-rendering anything."""
    a, b = _complex(volume), _complex(ref)  # (K, h, w, 2)
    p = (a * np.conj(b)).sum(axis=(1, 2, 3))  # (K,) complex: <a_k, b_k>
    psi = 2 * np.pi * np.arange(samples) / samples  # (A,)
    k = np.arange(1, len(p) + 1)
    score = (p[None] * np.exp(-1j * np.outer(psi, k))).real.sum(1)  # (A,)
    return rotate_phase(volume, float(psi[int(np.argmax(score))]))


def consensus_volume(volumes: np.ndarray) -> np.ndarray:
    """One motion target from a clip's stored volumes (P, 4K, h, w) canvas units, measured against different
    conditioning frames: each turned to the canonical phase, aligned in phase to the first (the canonical
    angle of a noisy flow can differ by a little), averaged (DIS noise of different reference frames averages
    out; issue 28's 16-clip test: spread 0.31 -> 0.26 of the mean after alignment, then one target) and
    turned to the canonical phase again. Moving the reference frame changes only the DC term exactly, and the
    grid by the (small) displacement, so the volumes describe the same loop."""
    canon = [canonical_phase(v.astype(np.float32)) for v in volumes]
    aligned = [canon[0]] + [align_phase(v, canon[0]) for v in canon[1:]]
    return canonical_phase(np.mean(aligned, axis=0).astype(np.float32))


FIELD_SIGMA = 1.0  # px of the field's grid: `smooth_field`'s Gaussian (64 px grid: 1/64 of the canvas)


def smooth_field(volume: np.ndarray, support: np.ndarray | None = None, sigma: float = FIELD_SIGMA) -> np.ndarray:
    """A sampled volume (4K, h, w) with each channel blurred by a Gaussian of `sigma` grid px, then times
    `support` (h, w) when given (the sampler's cut, so the blur spreads nothing onto empty canvas). The tiny motion
    model's samples carry noise at the grid's own scale, which the warp render shows as ragged outlines (a
    mouth's edge torn into 4 px teeth at 256 px); loop motion is smooth at that scale (the training targets
    hold 0.06% of their energy above a blur of 1.5 px)."""
    import cv2  # noqa: PLC0415 (only when sampling)

    if sigma <= 0:
        return volume
    out = np.stack([cv2.GaussianBlur(np.ascontiguousarray(c, np.float32), (0, 0), sigma,
                                     borderType=cv2.BORDER_CONSTANT) for c in volume])
    return out if support is None else out * support.astype(np.float32)


# `limit_folding`: the largest |dD/dx| allowed over the loop, in px per px of the field's grid. The artists' own
# training targets (Fluent consensus volumes, 236 clips) reach a median 0.54, q95 1.98, q99 2.77 (part edges
# move against their neighbours); the tiny model asked to spin made several units and shredded the sticker.
MAX_STRAIN = 2.0


def limit_folding(volume: np.ndarray, max_strain: float = MAX_STRAIN, phases: int = LOOP_FRAMES,
                  alpha: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(volume, scale): a sampled volume (4K, h, w) scaled down, when needed, so that at every loop phase every
    entry of the displacement's Jacobian dD/dx is at most `max_strain` (MAX_STRAIN: the artists' own fields'
    q95) where the sticker shows. Beyond it the warp tears the sticker apart or folds it over itself; `scale`
    is 1 for 95% of real loops. With `alpha` (h, w) (the still's alpha on the field's grid) the strain counts
    only where that phase shows the sticker (`moved_alpha`, 1 px around): where a field is cut to empty canvas
    nothing tears, and counting that edge had shrunk a spin 20-fold (measured on a spin of the tiny model)."""
    flows = render_flows(volume, phases)  # (T, h, w, 2) px of the volume's grid
    grads = np.abs(np.stack([np.gradient(flows[..., c], axis=a) for c in (0, 1) for a in (1, 2)]))  # (4, T, h, w)
    if alpha is not None and flows.size:
        import cv2  # noqa: PLC0415 (only when sampling)

        shown = moved_alpha(alpha, flows) > MOVED_THRESHOLD  # (T, h, w)
        shown = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) for m in shown]) > 0
        grads = grads * shown[None]
    strain = float(grads.max()) if flows.size else 0.0
    scale = 1.0 if strain <= max_strain else max_strain / strain
    return (volume if scale == 1.0 else (volume * np.float32(scale)).astype(np.float32)), scale


MOVED_THRESHOLD = 0.05  # alpha on the field's grid that counts as sticker (as MotionNet.support's)
MOTION_REACH = 0.25  # share of the field's grid: a sampled field is cut this far from the sticker (`reach_px`)


def reach_px(size: int) -> int:
    """MOTION_REACH in px of a field grid of `size` (16 px at 64)."""
    return max(1, round(MOTION_REACH * size))


def moved_alpha(alpha: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """The still's alpha (h, w) on the field's grid as each phase of backward `flows` (T, h, w, 2) px shows it:
    (T, h, w), frame t at x = alpha at x + D_t(x) (bilinear, transparent outside)."""
    import cv2  # noqa: PLC0415

    h, w = alpha.shape
    gy, gx = np.mgrid[:h, :w].astype(np.float32)
    a = np.ascontiguousarray(alpha, np.float32)
    return np.stack([cv2.remap(a, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0) for f in flows])


def dilate_soft(mask: np.ndarray, dilate: int) -> np.ndarray:
    """A 0/1 mask (h, w) dilated by `dilate` px (a (2d+1)^2 square) and softened by a 3x3 mean of the pixels
    inside the grid: MotionNet.support's shape, in numpy."""
    import cv2  # noqa: PLC0415

    m = cv2.dilate(mask.astype(np.uint8), np.ones((2 * dilate + 1,) * 2, np.uint8)).astype(np.float32)
    total = cv2.boxFilter(m, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    count = cv2.boxFilter(np.ones_like(m), -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return (total / count).astype(np.float32)


def motion_support(alpha: np.ndarray, volume: np.ndarray, dilate: int, phases: int = LOOP_FRAMES) -> np.ndarray:
    """Where a motion field is defined: (h, w) in [0, 1], every pixel that shows the sticker at some loop phase
    (the still's alpha (h, w) on the field's grid, and `moved_alpha` over the loop), dilated by `dilate` px and
    softened. The still's own support is not enough: a slide or a pulse carries the sticker past it, and a
    target or a sample cut there clips the moving sticker at its resting outline (it then looks like a wobble
    inside a fixed silhouette)."""
    shown = np.maximum(alpha, moved_alpha(alpha, render_flows(volume, phases)).max(axis=0))
    return dilate_soft(shown > MOVED_THRESHOLD, dilate)


def alpha_on_grid(alpha: np.ndarray, size: int) -> np.ndarray:
    """A still's alpha (..., S, S) in [0, 1] on the field's grid (..., size, size): the mean over each cell (area
    resampling; exactly MotionNet.support's average pool when S is a multiple of size)."""
    import cv2  # noqa: PLC0415

    flat = np.asarray(alpha, np.float32).reshape(-1, *alpha.shape[-2:])  # (..., S, S) -> (N, S, S)
    out = np.stack([cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA) for a in flat])
    return out.reshape(*alpha.shape[:-2], size, size)


def sampled_field(z: np.ndarray, alpha: np.ndarray, scales: Sequence[float], gamma: float, dilate: int) -> np.ndarray:
    """A sampler's normalised volume (4K, s, s) -> the field the render moves the sticker along, canvas units:
    cut to where the sticker shows over the loop, as the targets were (`motion_support`, `dilate` px around),
    the grid-scale noise of a small model's sample smoothed away (`smooth_field`), and scaled down where it
    would tear or fold the sticker (`limit_folding`). `alpha` (s, s): the still's alpha on the field's grid."""
    v = denormalise(np.asarray(z, np.float32), scales, gamma).astype(np.float32)
    v = smooth_field(v, motion_support(alpha, v, dilate))
    return limit_folding(v, alpha=alpha)[0]
