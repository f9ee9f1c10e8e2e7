"""Shared test set-up: one torch thread (CI has 2 cores, shared), offline Hugging Face, the browser."""

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/setup.sh installs it)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Real headless Chromium driven by Playwright, one per test module (the browser tests' one launcher)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python package playwright is not installed")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} missing: install it with `apt-get install -y chromium`")
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except sync_api.Error as e:
            pytest.skip(f"Chromium at {CHROMIUM} cannot launch here: {str(e).splitlines()[0]}")
        yield b
        b.close()
