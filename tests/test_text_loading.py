"""Loading the text encoder prints no progress bar of its own (the job's bar is the only one)."""

from __future__ import annotations

import contextlib
import io

from transformers.utils import logging as hf_logging

from animated_stickers.config import TextEncoderSpec
from animated_stickers.models.text import FrozenTextEncoder


def test_loading_the_text_encoder_is_silent_and_restores_library_settings():
    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        FrozenTextEncoder(TextEncoderSpec("minilm", None, 16))
    assert "Loading weights" not in err.getvalue() and err.getvalue() == ""
    assert (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()) == (bars, level)
