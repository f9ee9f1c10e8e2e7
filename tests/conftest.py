"""Shared test set-up: one torch thread (CI has 2 cores, shared), offline Hugging Face."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
