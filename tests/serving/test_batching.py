"""The micro-batcher on a plain function standing for the model (the server tests run it on real
models): how it groups requests, cuts top_k, isolates a bad request, drops timed-out ones and
refuses work when its queue is full."""
from __future__ import annotations

import asyncio
import threading

import pytest

from transferkit.serving.batching import MicroBatcher, ServerBusy


def classify(items: list, top_k: int) -> list:
    """Records as a classifier's `prediction_records` gives them; an item "bad" fails its call."""
    if "bad" in items:
        raise ValueError("bad input")
    return [{"input": item, "label": item, "top_k": [{"label": f"c{k}", "probability": 1 / (k + 1)}
                                                     for k in range(top_k)]} for item in items]


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_waiting_together_share_a_call_and_keep_their_own_items_and_top_k():
    async def main():
        calls = []
        batcher = MicroBatcher(lambda items, k: calls.append((list(items), k)) or classify(items, k),
                               max_size=6, max_wait_s=0.2)
        batcher.start()
        answers = await asyncio.gather(batcher.submit(["a"], 1), batcher.submit(["b", "c"], 3),
                                       batcher.submit(["d", "e", "f"], 2), batcher.submit(["g"], 1))
        await batcher.stop()
        return calls, answers, batcher.stats.to_dict()

    calls, answers, stats = run(main())
    # the first three fill a call of 6 at once; the fourth does not fit and runs next (after the wait)
    assert calls == [(["a", "b", "c", "d", "e", "f"], 3), (["g"], 1)]
    assert [[r["input"] for r in answer] for answer in answers] == [["a"], ["b", "c"], ["d", "e", "f"], ["g"]]
    assert [len(answer[0]["top_k"]) for answer in answers] == [1, 3, 2, 1]
    assert stats["model_calls"] == 2 and stats["requests"] == 4 and stats["batch_sizes"] == {"1": 1, "6": 1}


def test_a_failing_request_fails_alone():
    async def main():
        batcher = MicroBatcher(classify, max_size=8, max_wait_s=5.0)
        batcher.start()
        results = await asyncio.gather(batcher.submit(["a"], 1), batcher.submit(["bad"], 1),
                                       batcher.submit(["b", "c", "d", "e", "f", "g"], 1), return_exceptions=True)
        await batcher.stop()
        return results

    good, bad, more = run(main())
    assert [r["input"] for r in good] == ["a"] and len(more) == 6
    assert isinstance(bad, ValueError)


def test_a_timed_out_request_is_dropped_and_a_full_queue_refuses():
    release = threading.Event()
    seen = []

    def slow(items, top_k):
        release.wait(10)
        seen.extend(items)
        return classify(items, top_k)

    async def main():
        batcher = MicroBatcher(slow, max_size=1, max_wait_s=0, max_queue=3)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["first"], 1))  # taken by the worker, which then hangs
        await asyncio.sleep(0.05)
        with pytest.raises(asyncio.TimeoutError):
            await batcher.submit(["late"], 1, timeout_s=0.05)  # waits in the queue, gives up
        # the timed-out request keeps its place in the queue until the worker reaches and skips it
        waiting = asyncio.ensure_future(batcher.submit(["queued"], 1))
        other = asyncio.ensure_future(batcher.submit(["queued too"], 1))
        await asyncio.sleep(0.05)
        with pytest.raises(ServerBusy):
            await batcher.submit(["one too many"], 1)
        release.set()
        results = await asyncio.gather(first, waiting, other)
        await batcher.stop()
        return results, batcher.stats.to_dict()

    results, stats = run(main())
    assert [r[0]["input"] for r in results] == ["first", "queued", "queued too"]
    assert "late" not in seen and stats["timeouts"] == 1 and stats["refused"] == 1
