"""Input handling: canvas fit and restore, background keying, size and prompt checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from animated_stickers.checks import MAX_PROMPT_CHARS, check_prompt
from animated_stickers.errors import UserError
from animated_stickers.rgba import fit_on_square, restore_from_square
from animated_stickers.sampling.preprocess import (
    has_transparency,
    load_image,
    prepare_sticker,
    to_rgba,
)
from sampling_support import sticker


def test_fit_pads_with_transparency_and_restore_is_exact_when_no_resampling_is_needed():
    img = sticker(64, 32)
    canvas, place = fit_on_square(img, 64)
    assert canvas.size == (64, 64) and place.box == (0, 16, 64, 32)
    arr = np.asarray(canvas)
    assert (arr[:16, :, 3] == 0).all() and (arr[48:, :, 3] == 0).all()  # transparent padding
    assert np.array_equal(np.asarray(restore_from_square(canvas, place)), np.asarray(img))


@pytest.mark.parametrize("size", [(300, 120), (40, 90), (128, 128)])
def test_restore_gives_back_the_original_size_and_content(size):
    img = sticker(*size)
    canvas, place = fit_on_square(img, 64)
    back = restore_from_square(canvas, place)
    assert back.size == size and back.mode == "RGBA"
    a, b = np.asarray(back, np.float32), np.asarray(img, np.float32)
    # Through a 64 px canvas detail is lost, but colour and shape survive (soft-edged test image).
    assert np.abs(a[..., 3] - b[..., 3]).mean() < 12
    vis = (a[..., 3] > 200) & (b[..., 3] > 200)
    assert np.abs(a[vis, :3] - b[vis, :3]).mean() < 12
    w, h = size
    assert max(place.box[2:]) == 64 and abs(place.box[2] / place.box[3] - w / h) < 0.05  # aspect kept


def test_resize_does_not_bleed_hidden_colour_of_transparent_pixels():
    arr = np.zeros((64, 64, 4), np.uint8)
    arr[..., :3] = (0, 255, 0)  # green garbage behind alpha 0
    arr[16:48, 16:48] = (255, 0, 0, 255)
    canvas, _ = fit_on_square(Image.fromarray(arr, "RGBA"), 32)
    out = np.asarray(canvas)
    visible = out[..., 3] > 30
    assert out[visible, 1].max() < 40  # no green fringe on the red square's edge


def white_background(w: int = 80, h: int = 60) -> Image.Image:
    img = Image.new("RGB", (w, h), (255, 255, 255))
    img.paste((20, 90, 200), (20, 15, 60, 45))  # the sticker: a blue block
    img.paste((255, 255, 255), (35, 25, 45, 35))  # a white "eye" inside it, not connected to the border
    return img


def test_keying_removes_only_the_border_connected_background():
    out = np.asarray(to_rgba(white_background(), "w.png"))
    assert out[0, 0, 3] == 0 and out[5, 70, 3] == 0  # background transparent
    assert out[20, 30, 3] == 255 and tuple(out[20, 30, :3]) == (20, 90, 200)  # sticker kept
    assert out[30, 40, 3] == 255  # the white eye inside the sticker survives


def test_opaque_rgba_is_keyed_like_rgb_and_real_alpha_is_kept():
    keyed = to_rgba(white_background().convert("RGBA"), "opaque.png")
    assert np.asarray(keyed)[0, 0, 3] == 0
    img = sticker()
    assert has_transparency(img)
    assert np.array_equal(np.asarray(to_rgba(img, "s.png")), np.asarray(img))


def test_noisy_background_without_alpha_is_refused():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "RGB")
    with pytest.raises(UserError, match="has no transparency and no uniform background"):
        to_rgba(photo, "photo.jpg")


def test_flat_image_is_refused():
    with pytest.raises(UserError, match="one flat colour"):
        to_rgba(Image.new("RGB", (32, 32), (9, 9, 9)), "flat.png")


@pytest.mark.parametrize("size", [(1, 1), (15, 200), (8193, 20)])
def test_sizes_out_of_range_are_refused(size):
    with pytest.raises(UserError, match=r"expected at (least|most)"):
        prepare_sticker(Image.new("RGBA", size), "x.png", 64)


def test_load_image_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match="is not an image"):
        load_image(tmp_path / "notes.png")


def test_load_image_takes_the_first_frame_of_an_animation(tmp_path):
    frames = [Image.new("RGBA", (32, 32), (i * 100, 0, 0, 255)) for i in range(2)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    assert load_image(tmp_path / "a.png").getpixel((0, 0))[0] == 0


def test_prompts_are_checked():
    assert check_prompt("  waving  ") == "waving"
    assert check_prompt("x" * MAX_PROMPT_CHARS)
    for bad in ("", "   ", "x" * 10_000):
        with pytest.raises(UserError):
            check_prompt(bad)
