"""Micro-batching: collect up to N compatible requests or wait M ms, then run ONE batched call in a thread.

Why: batching is one of the paper's inference optimizations (one UNet call serves many stickers).

Rules (documented in the README of the API too):
- Jobs carry a `key`; only jobs with equal keys share a batch (the app uses the sampling settings,
  see app.batch_key). The oldest waiting job always leads the next batch, so nobody starves; jobs
  with other keys keep their place in the line.
- The wait window starts when the oldest job was submitted: a job that already waited while the
  previous batch ran is not made to wait again.
- The queue is bounded: `queue_size` jobs may wait (the running batch does not count); one more is
  refused with `QueueFull` (the app answers 503 + Retry-After).
- A job whose client gave up (timeout) leaves the queue at once; when every job of a running batch has
  been abandoned the batch is stopped at its next progress callback, so no compute is wasted.
- Batches run one at a time on a single worker thread (the model is not shared between threads).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

# run_batch(payloads, key, progress) -> one result per payload, same order; runs in the worker thread.
ProgressFn = Callable[[int, int], None]
RunBatch = Callable[[list[Any], Hashable, ProgressFn], list[Any]]


class QueueFull(Exception):
    """The waiting line is full; `retry_after_s` is an estimate of when a place frees up."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"queue full, retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class RequestTimeout(Exception):
    """The job did not finish within its timeout (queue wait included)."""


class BatchAbandoned(Exception):
    """Raised inside a running batch when all of its jobs were abandoned, to stop early."""


class ShuttingDown(Exception):
    """The batcher stopped before the job ran."""


@dataclass(eq=False)
class Job:
    """One request in the line: its payload, batching key, future result and progress."""

    payload: Any
    key: Hashable
    future: asyncio.Future
    submitted: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued | running | done | failed | abandoned
    step: int = 0
    total: int = 0
    batch_size: int = 0
    index: int = -1  # position in its batch (the pipeline seeds item i with seed + i)
    started: float | None = None
    finished: float | None = None

    @property
    def abandoned(self) -> bool:
        return self.state == "abandoned"


class MicroBatcher:
    """An asyncio line of jobs served by one worker task that runs batches in a worker thread."""

    def __init__(self, run_batch: RunBatch, max_batch: int = 4, max_wait_ms: float = 50.0,
                 queue_size: int = 32) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        # counters for /v1/stats
        self.batch_sizes: Counter[int] = Counter()
        self.completed = self.rejected = self.timed_out = self.failed = self.aborted = 0
        self._batch_s_ema: float | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the worker task (call inside the running event loop)."""
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sticker-batch")
        self._worker = asyncio.create_task(self._serve_forever(), name="micro-batcher")

    async def stop(self) -> None:
        """Fail waiting jobs, stop the running batch at its next step, and wait for the thread."""
        for job in list(self._waiting) + self._running:
            job.state = "abandoned"
            if not job.future.done():
                job.future.set_exception(ShuttingDown("server is shutting down"))
        self._waiting.clear()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, True)

    # ------------------------------------------------------------------ requests

    def submit(self, payload: Any, key: Hashable) -> Job:
        """Put a job in line, or raise QueueFull; call from the event loop thread."""
        if self._worker is None or self._worker.done():
            raise ShuttingDown("batcher is not running")
        if len(self._waiting) >= self.queue_size:
            self.rejected += 1
            raise QueueFull(self.retry_after_s())
        job = Job(payload=payload, key=key, future=asyncio.get_running_loop().create_future())
        # Mark errors as seen: a client that gave up never awaits its future, which is fine.
        job.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._waiting.append(job)
        self._arrived.set()
        return job

    async def result(self, job: Job, timeout_s: float) -> Any:
        """The job's result; RequestTimeout once `timeout_s` since submission has passed."""
        left = timeout_s - (time.monotonic() - job.submitted)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), max(left, 0.0))
        except asyncio.TimeoutError:
            self.timed_out += 1
            self._abandon(job)
            raise RequestTimeout(f"no result within {timeout_s:g} s") from None
        except asyncio.CancelledError:  # the client went away
            self._abandon(job)
            raise

    def position(self, job: Job) -> int:
        """How many jobs wait ahead of this one (0 = next); -1 when it is not waiting."""
        try:
            return self._waiting.index(job)
        except ValueError:
            return -1

    def retry_after_s(self) -> int:
        """Seconds until the line has probably moved: batches ahead x mean batch time, at least 1."""
        per_batch = self._batch_s_ema if self._batch_s_ema is not None else 1.0
        batches_ahead = math.ceil(len(self._waiting) / self.max_batch) + (1 if self._running else 0)
        return int(min(max(math.ceil(per_batch * max(batches_ahead, 1)), 1), 600))

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring and tests: batch sizes seen, queue depth, rejections, timeouts."""
        return {
            "batches": sum(self.batch_sizes.values()),
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "completed": self.completed, "rejected": self.rejected, "timed_out": self.timed_out,
            "failed": self.failed, "aborted_batches": self.aborted,
            "waiting": len(self._waiting), "running": len(self._running),
            "max_batch": self.max_batch, "max_wait_ms": self.max_wait_s * 1000.0,
            "queue_size": self.queue_size,
            "mean_batch_s": round(self._batch_s_ema, 4) if self._batch_s_ema is not None else None,
        }

    # ------------------------------------------------------------------ worker

    def _abandon(self, job: Job) -> None:
        if job.state == "queued":
            try:
                self._waiting.remove(job)
            except ValueError:
                pass
        if job.state in ("queued", "running"):
            job.state = "abandoned"

    async def _collect(self) -> list[Job]:
        """Wait until the oldest job has max_batch compatible peers or its window has passed."""
        while self._waiting:
            head = self._waiting[0]
            peers = [j for j in self._waiting if j.key == head.key][: self.max_batch]
            left = head.submitted + self.max_wait_s - time.monotonic()
            if len(peers) >= self.max_batch or left <= 0:
                for j in peers:
                    self._waiting.remove(j)
                return peers
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass
        return []

    def _call(self, batch: list[Job]) -> list[Any]:
        """Runs in the worker thread: the batched call, with progress copied onto every job."""
        def progress(step: int, total: int) -> None:
            for j in batch:
                j.step, j.total = int(step), int(total)
            if all(j.abandoned for j in batch):
                raise BatchAbandoned("every request of this batch was abandoned")

        results = self.run_batch([j.payload for j in batch], batch[0].key, progress)
        if len(results) != len(batch):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} jobs")
        return results

    async def _serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch = await self._collect()
            if not batch:
                continue
            now = time.monotonic()
            for i, j in enumerate(batch):
                j.state, j.started, j.batch_size, j.index = "running", now, len(batch), i
            self._running = batch
            results: list[Any] | None = None
            error: BaseException | None = None
            try:
                results = await loop.run_in_executor(self._executor, self._call, batch)
            except BatchAbandoned:
                self.aborted += 1
            except Exception as e:  # noqa: BLE001 -- a failing batch fails its jobs, never the worker
                error = e
                self.failed += len(batch)
            finally:
                self._running = []
            elapsed = time.monotonic() - now
            self.batch_sizes[len(batch)] += 1
            if results is not None:  # mean time of a full batch, for Retry-After
                ema = self._batch_s_ema
                self._batch_s_ema = elapsed if ema is None else 0.7 * ema + 0.3 * elapsed
            for i, j in enumerate(batch):
                j.finished = time.monotonic()
                if results is not None:
                    self.completed += 1
                if j.abandoned or j.future.done():
                    continue  # nobody waits for it any more
                if results is not None:
                    j.state = "done"
                    j.future.set_result(results[i])
                elif error is not None:
                    j.state = "failed"
                    j.future.set_exception(error)
