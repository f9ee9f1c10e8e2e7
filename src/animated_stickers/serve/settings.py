"""Knobs of the HTTP service: batching, queue, limits. One dataclass shared by the app, CLI and benchmark."""

from __future__ import annotations

from dataclasses import dataclass

# Request line + headers must arrive within this many seconds (headertimeout.py; `stickers serve
# --header-timeout-s`); idle keep-alive connections and stalled bodies have their own limits (bodylimit.py).
HEADER_TIMEOUT_S = 10.0

# Upload types the API accepts: Pillow format name -> MIME type.
ALLOWED_IMAGE_FORMATS = {"PNG": "image/png", "WEBP": "image/webp", "JPEG": "image/jpeg", "GIF": "image/gif"}

# Output formats: name -> (file suffix given to export.write_animation, MIME type of the reply).
OUTPUT_FORMATS = {
    "webp": (".webp", "image/webp"),
    "gif": (".gif", "image/gif"),
    "png": (".png", "image/apng"),
    "webm": (".webm", "video/webm"),
}


@dataclass
class ServeSettings:
    """Service limits; every one is enforced with a 4xx/503/504 JSON error, never a 500."""

    max_batch: int = 4  # N: most requests merged into one sampling call
    max_wait_ms: float = 50.0  # M: how long the oldest waiting request may wait for others to join
    queue_size: int = 32  # waiting requests (not counting the batch that runs); more -> 503
    request_timeout_s: float = 300.0  # submission -> result, queue wait included; more -> 504
    max_upload_bytes: int = 8 * 1024 * 1024  # whole request body; more -> 413
    max_prompt_chars: int = 300  # longer -> 422
    max_pixels: int = 4096 * 4096  # decoded image area; more -> 422 (decompression-bomb guard)
    max_side: int = 1024  # larger uploads are downscaled to this (keeps result memory bounded)
    max_steps: int = 100  # sampling steps a request may ask for
    default_fps: float | None = None  # None: the path's own (motion 24: 48 frames = 2 s; video 8: 8 frames = 1 s)
    result_cache_mb: int = 256  # recent results (RGBA frames) kept for re-download in other formats
    progress_entries: int = 256  # request ids whose progress is remembered

    def validate(self) -> ServeSettings:
        """Raise ValueError naming the first bad knob."""
        for name in ("max_batch", "queue_size", "max_upload_bytes", "max_prompt_chars", "max_side",
                     "max_steps", "result_cache_mb", "progress_entries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected an integer >= 1")
        if self.queue_size < self.max_batch:
            raise ValueError(f"queue_size={self.queue_size}: expected >= max_batch={self.max_batch} "
                             "(a batch is gathered from waiting requests)")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={self.max_wait_ms}: expected >= 0")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s={self.request_timeout_s}: expected > 0")
        return self
