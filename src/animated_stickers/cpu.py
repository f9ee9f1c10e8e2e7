"""How many CPU cores this process may use (torch and onnxruntime threads both start from it)."""

from __future__ import annotations

import os

from .errors import UserError


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_threads(threads: int, flag: str = "--threads") -> int:
    """`threads` as given (0 means all available cores); UserError for a negative count."""
    if threads < 0:
        raise UserError(f"{flag} {threads}: expected 0 (all {available_cores()} cores) or a positive thread count")
    return threads
