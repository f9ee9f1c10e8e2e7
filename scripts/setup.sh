#!/usr/bin/env bash
# One-time set-up into ./.venv (idempotent): CPU torch first (the wheel on disk), then the project.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # Installing torch first keeps pip from pulling a multi-GB CUDA build for a dependency.
  .venv/bin/pip install -q torch==2.13.0
fi
.venv/bin/pip install -q -e ".[test]"
# Headless Chromium for the browser tests (Debian package; driven by Playwright with executable_path).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will say why they skip"
fi
# The bundled models' sampling graphs as ONNX (weights/tiny/onnx, ~20 s once, and weights/motion/onnx when the
# motion model is there; a no-op when current): `stickers animate` then starts without importing torch.
.venv/bin/stickers compile
echo "set-up done: .venv ready"
