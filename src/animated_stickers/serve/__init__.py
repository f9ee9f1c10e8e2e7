"""HTTP API (FastAPI, micro-batched sampling) and the web page: `stickers serve`, `stickers serve-bench`."""
