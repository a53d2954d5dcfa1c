"""Bounded micro-batching: concurrent requests' items gathered into one model call.

One worker task takes the first waiting request, then keeps gathering requests until the batch
holds `max_size` items or `max_wait_s` has passed, and runs the model once in a thread (the event
loop keeps accepting and parsing requests meanwhile). A CPU forward pass of 8 images costs far
less than 8 passes of one, so under load this multiplies throughput; alone, a request waits at
most `max_wait_s` more. The queue is bounded too: when `max_queue` requests wait, new ones are
refused at once (503) instead of piling up behind a timeout.
"""
from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


class ServerBusy(Exception):
    """The queue is full: the request was not accepted."""


@dataclass
class _Job:
    items: list
    top_k: int
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the worker did, for GET /stats: requests answered, model calls and their sizes."""

    requests: int = 0
    model_calls: int = 0
    items: int = 0
    largest_batch: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)  # items per model call → how many calls
    timeouts: int = 0
    refused: int = 0

    def record(self, size: int, requests: int) -> None:
        self.requests += requests
        self.model_calls += 1
        self.items += size
        self.largest_batch = max(self.largest_batch, size)
        self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "model_calls": self.model_calls, "items": self.items,
                "largest_batch": self.largest_batch, "timeouts": self.timeouts, "refused": self.refused,
                "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())}}


def _trimmed(result: Any, top_k: int) -> Any:
    """A classifier record cut to `top_k` classes (the batch ran with the largest top_k asked);
    anything else (a forecast) as it is."""
    if not isinstance(result, dict) or "top_k" not in result or len(result["top_k"]) <= top_k:
        return result
    record = copy.copy(result)
    record["top_k"] = result["top_k"][:top_k]
    if "heads" in result:
        record["heads"] = {h: {**r, "top_k": r["top_k"][:top_k]} for h, r in result["heads"].items()}
    return record


class MicroBatcher:
    """Runs `predict(items, top_k) -> one result per item` on batches of concurrent requests."""

    def __init__(self, predict: Callable[[list, int], list], max_size: int = 32, max_wait_s: float = 0.005,
                 max_queue: int = 256) -> None:
        if max_size < 1 or max_wait_s < 0 or max_queue < 1:
            raise ValueError("max_size and max_queue must be ≥ 1 and max_wait_s ≥ 0")
        self.predict, self.max_size, self.max_wait_s, self.max_queue = predict, max_size, max_wait_s, max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: _Job | None = None  # taken from the queue, but did not fit the last batch
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="transferkit-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    async def submit(self, items: list, top_k: int, timeout_s: float | None = None) -> list:
        """The results of `items` once their batch has run; raises `ServerBusy` when the queue is
        full, `asyncio.TimeoutError` after `timeout_s` (the items are then dropped if not yet run),
        or what the model call raised for these items."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(list(items), top_k, future))
        except asyncio.QueueFull:
            self.stats.refused += 1
            raise ServerBusy(f"{self.max_queue} requests are waiting") from None
        try:
            return await asyncio.wait_for(future, timeout_s)  # cancels the future: the worker skips it
        except asyncio.TimeoutError:
            self.stats.timeouts += 1
            raise

    async def _next_batch(self) -> list[_Job]:
        """The held-over job or the next one from the queue, then more until the batch is full or
        `max_wait_s` has passed since the first was taken."""
        assert self._queue is not None
        first, self._held = self._held or await self._queue.get(), None
        batch, size = [first], len(first.items)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while size < self.max_size:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if size + len(job.items) > self.max_size:
                self._held = job  # first of the next batch: a request's items are never split
                break
            batch.append(job)
            size += len(job.items)
        return batch

    async def _run(self) -> None:
        while True:
            batch = [job for job in await self._next_batch() if not job.future.done()]  # timed out: skip
            if batch:
                await self._run_batch(batch)

    async def _call(self, jobs: list[_Job]) -> list:
        items = [item for job in jobs for item in job.items]
        results = await asyncio.to_thread(self.predict, items, max(job.top_k for job in jobs))
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for {len(items)} inputs")
        self.stats.record(len(items), len(jobs))
        return results

    async def _run_batch(self, batch: list[_Job]) -> None:
        try:
            results = await self._call(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc=exc)
                return
            # one request's bad input must not fail the others batched with it: run each alone
            log.debug("batch of %d requests failed (%s); running them one by one", len(batch), exc)
            for job in batch:
                if job.future.done():
                    continue
                try:
                    _settle(job, results=await self._call([job]))
                except Exception as single:
                    _settle(job, exc=single)
            return
        start = 0
        for job in batch:
            _settle(job, results=results[start:start + len(job.items)])
            start += len(job.items)


def _settle(job: _Job, results: list | None = None, exc: BaseException | None = None) -> None:
    """Give `job` its results (cut to its top_k) or its exception, unless it timed out meanwhile."""
    if job.future.done():
        return
    if exc is not None:
        job.future.set_exception(exc)
    else:
        job.future.set_result([_trimmed(r, job.top_k) for r in results or []])
