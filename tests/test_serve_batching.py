"""MicroBatcher rules on a real event loop and worker thread (run_batch is a plain function here)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from animated_stickers.serve.batching import MicroBatcher, QueueFull, RequestTimeout, ShuttingDown


class Recorder:
    """A batch function that records each call's payloads and can be slowed or made to fail."""

    def __init__(self, step_s: float = 0.0, steps: int = 1, fail_on: object = None) -> None:
        self.calls: list[list] = []
        self.steps_done: list[int] = []
        self.step_s, self.steps, self.fail_on = step_s, steps, fail_on
        self.thread_names: set[str] = set()

    def __call__(self, payloads, key, progress):
        self.calls.append(list(payloads))
        self.thread_names.add(threading.current_thread().name)
        if self.fail_on in payloads:
            raise ValueError(f"bad payload {self.fail_on}")
        done = 0
        for i in range(self.steps):
            time.sleep(self.step_s)
            progress(i + 1, self.steps)
            done = i + 1
        self.steps_done.append(done)
        return [(key, p * 10) for p in payloads]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_concurrent_compatible_jobs_share_batches_up_to_max_batch():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, max_batch=4, max_wait_ms=200, queue_size=16)
        await b.start()
        jobs = [b.submit(i, key="k") for i in range(6)]
        out = [await b.result(j, 10) for j in jobs]
        stats = b.stats()
        await b.stop()
        return out, stats

    out, stats = run(main())
    assert out == [("k", i * 10) for i in range(6)]  # each job got its own result, in order
    assert [len(c) for c in rec.calls] == [4, 2]
    assert stats["batch_sizes"] == {"2": 1, "4": 1} and stats["completed"] == 6
    assert rec.thread_names and all(n.startswith("sticker-batch") for n in rec.thread_names)


def test_different_keys_never_share_a_batch_and_the_oldest_job_leads():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, max_batch=4, max_wait_ms=100, queue_size=16)
        await b.start()
        jobs = [b.submit(p, key=k) for p, k in [(1, "a"), (2, "b"), (3, "a"), (4, "b"), (5, "c")]]
        out = [await b.result(j, 10) for j in jobs]
        await b.stop()
        return out

    out = run(main())
    assert out == [("a", 10), ("b", 20), ("a", 30), ("b", 40), ("c", 50)]
    assert rec.calls == [[1, 3], [2, 4], [5]]


def test_a_lone_job_waits_for_the_window_then_runs_alone():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, max_batch=8, max_wait_ms=150, queue_size=16)
        await b.start()
        job = b.submit(7, key="k")
        await b.result(job, 10)
        await b.stop()
        return job

    job = run(main())
    assert rec.calls == [[7]]
    assert job.started - job.submitted >= 0.14  # it did wait for company
    assert job.batch_size == 1 and job.state == "done"


def test_full_queue_refuses_with_retry_after_and_the_running_batch_does_not_count():
    rec = Recorder(step_s=0.05, steps=6)

    async def main():
        b = MicroBatcher(rec, max_batch=1, max_wait_ms=0, queue_size=1)
        await b.start()
        first = b.submit(1, key="k")
        while first.state != "running":
            await asyncio.sleep(0.005)
        second = b.submit(2, key="k")  # waits: the queue holds one
        with pytest.raises(QueueFull) as refused:
            b.submit(3, key="k")
        results = [await b.result(first, 10), await b.result(second, 10)]
        stats = b.stats()
        await b.stop()
        return refused.value, results, stats

    refused, results, stats = run(main())
    assert refused.retry_after_s >= 1
    assert results == [("k", 10), ("k", 20)]
    assert stats["rejected"] == 1 and stats["completed"] == 2


def test_timed_out_jobs_leave_the_queue_and_an_abandoned_batch_stops_early():
    rec = Recorder(step_s=0.02, steps=500)  # 10 s if it ran to the end

    async def main():
        b = MicroBatcher(rec, max_batch=1, max_wait_ms=0, queue_size=4)
        await b.start()
        running = b.submit(1, key="k")
        waiting = b.submit(2, key="k")
        t0 = time.monotonic()
        for job in (running, waiting):
            with pytest.raises(RequestTimeout):
                await b.result(job, 0.3)
        assert b.stats()["waiting"] == 0  # the waiting job left the line at once
        while b.stats()["running"]:
            await asyncio.sleep(0.01)
        stopped_after = time.monotonic() - t0
        stats = b.stats()
        await b.stop()
        return stopped_after, stats, running, waiting

    stopped_after, stats, running, waiting = run(main())
    assert stats["timed_out"] == 2 and stats["aborted_batches"] == 1
    assert rec.calls == [[1]]  # the abandoned waiting job never ran
    assert not rec.steps_done  # the running batch raised out of its loop instead of finishing
    assert stopped_after < 5.0
    assert running.abandoned and waiting.abandoned


def test_a_failing_batch_fails_its_jobs_and_the_worker_keeps_serving():
    rec = Recorder(fail_on=2)

    async def main():
        b = MicroBatcher(rec, max_batch=2, max_wait_ms=50, queue_size=8)
        await b.start()
        bad = [b.submit(1, key="k"), b.submit(2, key="k")]
        errors = []
        for j in bad:
            with pytest.raises(ValueError) as e:
                await b.result(j, 10)
            errors.append(str(e.value))
        ok = await b.result(b.submit(3, key="k"), 10)
        stats = b.stats()
        await b.stop()
        return errors, ok, stats

    errors, ok, stats = run(main())
    assert errors == ["bad payload 2", "bad payload 2"]
    assert ok == ("k", 30)
    assert stats["failed"] == 2 and stats["completed"] == 1


def test_stop_fails_waiting_jobs_and_refuses_new_ones():
    rec = Recorder(step_s=0.02, steps=20)

    async def main():
        b = MicroBatcher(rec, max_batch=1, max_wait_ms=0, queue_size=4)
        await b.start()
        first = b.submit(1, key="k")
        second = b.submit(2, key="k")
        while first.state != "running":
            await asyncio.sleep(0.005)
        await b.stop()
        with pytest.raises(ShuttingDown):
            await b.result(second, 1)
        with pytest.raises(ShuttingDown):
            b.submit(3, key="k")
        return rec.calls

    assert run(main()) == [[1]]
