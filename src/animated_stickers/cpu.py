"""How many CPU cores this process may use (torch and onnxruntime threads both start from it)."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
