"""The fair queue alone: round-robin across users, FIFO within one, limit, cancel, close."""

from __future__ import annotations

import asyncio

import pytest

from xgen_jupyter.core.scheduler.fairqueue import FairQueue, QueueClosed, QueueFull


async def _served_order(q: FairQueue, arrivals: list[tuple[str, int]]) -> list[tuple[str, int]]:
    order: list[tuple[str, int]] = []
    await q.acquire("first")  # holds the one slot while everyone queues

    async def one(user: str, i: int) -> None:
        await q.acquire(user)
        order.append((user, i))
        await asyncio.sleep(0)
        q.release()

    tasks = []
    for user, i in arrivals:
        tasks.append(asyncio.create_task(one(user, i)))
        await asyncio.sleep(0)  # arrive in this order
    q.release()
    await asyncio.gather(*tasks)
    return order


async def test_round_robin_across_users_fifo_within() -> None:
    q = FairQueue("s", slots=1)
    arrivals = [("heavy", i) for i in range(6)] + [("a", 0), ("a", 1), ("b", 0)]
    order = await _served_order(q, arrivals)
    assert order[:5] == [("heavy", 0), ("a", 0), ("b", 0), ("heavy", 1), ("a", 1)]
    assert [i for u, i in order if u == "heavy"] == list(range(6))  # FIFO within a user
    assert q.in_flight == 0 and q.queued == 0


async def test_positions_follow_the_serving_order() -> None:
    q = FairQueue("s", slots=1)
    await q.acquire("x")
    tasks = [asyncio.create_task(q.acquire(u)) for u in ("h", "h", "h", "a")]
    await asyncio.sleep(0)
    snap = q.snapshot()
    assert snap["queued"] == 4 and snap["in_flight"] == 1
    assert snap["positions"] == {"h": [1, 3, 4], "a": [2]}
    q.close("test over")
    for t in tasks:
        with pytest.raises(QueueClosed):
            await t


async def test_limit_answers_queue_full_with_retry_after() -> None:
    q = FairQueue("s", slots=1, limit=2)
    await q.acquire("u")
    waiting = [asyncio.create_task(q.acquire("u")) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFull) as info:
        await q.acquire("v")
    assert info.value.retry_after >= 1
    q.release()
    q.release()
    q.release()
    await asyncio.gather(*waiting)
    assert q.in_flight == 0 and q.queued == 0


async def test_a_cancelled_wait_leaves_no_trace() -> None:
    q = FairQueue("s", slots=1)
    await q.acquire("u")
    left = asyncio.create_task(q.acquire("gone"))
    stays = asyncio.create_task(q.acquire("w"))
    await asyncio.sleep(0)
    left.cancel()
    await asyncio.sleep(0)
    assert q.queued == 1 and q.snapshot()["positions"] == {"w": [1]}
    q.release()
    await stays  # the slot went to w, not to the one that left
    q.release()
    assert q.in_flight == 0 and q.queued == 0


async def test_cancelled_just_after_the_handover_passes_the_slot_on() -> None:
    q = FairQueue("s", slots=1)
    await q.acquire("u")
    left = asyncio.create_task(q.acquire("gone"))
    nxt = asyncio.create_task(q.acquire("w"))
    await asyncio.sleep(0)
    q.release()  # the slot is handed to "gone" ...
    left.cancel()  # ... which leaves before it runs
    with pytest.raises(asyncio.CancelledError):
        await left
    await nxt
    assert q.in_flight == 1
    q.release()
    assert q.in_flight == 0
