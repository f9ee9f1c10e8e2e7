"""The web page in real headless Chromium (Debian's /usr/bin/chromium driven by Python playwright)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from animated_stickers.serve.settings import ServeSettings
from sampling_support import tiny_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with tiny_server(ServeSettings(max_batch=2, max_wait_ms=10, queue_size=4)) as srv:
        yield srv


def sticker_file(path) -> None:
    """An RGBA sticker with a transparent background: a red disc."""
    yy, xx = np.mgrid[0:80, 0:80]
    rgba = np.zeros((80, 80, 4), np.uint8)
    disc = (xx - 40) ** 2 + (yy - 40) ** 2 <= 30**2
    rgba[disc] = (220, 40, 40, 255)
    Image.fromarray(rgba, "RGBA").save(path)


def assert_animated_with_alpha(data: bytes, fmt: str) -> None:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == fmt and im.n_frames == 8
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGBA")).astype(int))
    assert min(int(f[..., 3].min()) for f in frames) < 255  # transparent pixels exist
    assert max(np.abs(f - frames[0]).max() for f in frames[1:]) > 0  # it moves: not one still repeated


def test_page_animates_an_uploaded_sticker_and_offers_downloads(browser, server, tmp_path):
    src = tmp_path / "sticker.png"
    sticker_file(src)
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('model-line').textContent.startsWith('Model')")
    # No text-to-image model on this server: the control is disabled and says why.
    assert page.is_disabled("#gen-prompt") and page.is_visible("#t2i-note")

    page.set_input_files("#file", str(src))
    page.fill("#prompt", "bouncing up and down")
    page.fill("#steps", "3")
    assert page.is_enabled("#animate-btn")
    page.click("#animate-btn")
    page.wait_for_selector("#result[data-done='1']", state="visible", timeout=90_000)
    status = page.text_content("#status-text")
    assert status.startswith("Done in"), status
    assert page.is_hidden("#spinner")

    # The displayed result: fetch its blob URL inside the page and read it with Pillow.
    b64 = page.evaluate("""async () => {
        const r = await fetch(document.getElementById('result').src);
        const bytes = new Uint8Array(await r.arrayBuffer());
        let s = ''; for (const b of bytes) s += String.fromCharCode(b);
        return btoa(s);
    }""")
    assert_animated_with_alpha(base64.b64decode(b64), "WEBP")

    # Download as GIF (re-encoded server-side from the same frames).
    with page.expect_download() as dl:
        page.click("#dl-gif")
    gif_path = tmp_path / "download.gif"
    dl.value.save_as(gif_path)
    assert_animated_with_alpha(gif_path.read_bytes(), "GIF")

    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as im:
        assert im.size[0] >= 1000
    assert not errors, errors
    page.close()


def test_page_shows_a_one_line_error_for_a_bad_upload(browser, server, tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"definitely not a PNG")
    page = browser.new_page()
    page.goto(server.url + "/")
    page.set_input_files("#file", str(bad))
    page.fill("#prompt", "wave")
    page.click("#animate-btn")
    page.wait_for_selector("#status.error", timeout=30_000)
    text = page.text_content("#status-text")
    assert text.startswith("Error:") and "not a readable image" in text
    assert page.is_hidden("#result")
    page.close()
