"""Box-wide fair queues: three real users' Jupyter servers (runuser) send their requests for alice's
1-slot server (shared with bob and carol) through their own proxies; the box service keeps one
fair queue for all of them (round-robin across users by the socket's peer uid). The queue shows in
alice's GET servers/one and events socket; a burst of alice's does not make bob and carol wait behind
it; a full queue answers 429 with Retry-After; a client that leaves while queued is dequeued; the
engine killed while requests wait: each gets an error at once and the queue empties."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
import websocket

from .box_harness import BoxProc, ensure_users, world_dir
from .box_jupyter import UserJupyter

pytestmark = pytest.mark.engine
LIMIT = 24  # alice's burst of 20 and the light users' 4 fit; one more is a 429


@pytest.fixture(scope="module")
def box(shared_models: Any) -> Iterator[tuple[BoxProc, dict[str, UserJupyter]]]:
    ensure_users()
    root = world_dir("xgen-svc-fair-")
    (root / "shared").mkdir(mode=0o755)
    service = BoxProc(root, shared_models, extra=["--queue-limit", str(LIMIT)]).start()
    xgen = {"shared_dir": str(root / "shared"), "model_dirs": [str(shared_models)]}
    users = {u: UserJupyter(root, u, xgen) for u in ("alice", "bob", "carol")}
    threads = [threading.Thread(target=j.start) for j in users.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        alice = users["alice"]
        load = {"model": str(shared_models / "gemma.gguf"), "name": "one", "n_parallel": 1, "n_ctx": 1024}
        assert alice.api("POST", "servers", json=load).status_code == 202
        assert alice.wait_state("one", {"ready", "failed"})["state"] == "ready"
        r = alice.api("POST", "servers/one/share", json={"users": ["bob", "carol"]})
        assert r.status_code == 200, r.text
        yield service, users
    finally:
        stops = [threading.Thread(target=j.stop) for j in users.values()]  # each may take 20 s: at once
        for t in stops:
            t.start()
        for t in stops:
            t.join()
        service.stop()


def model_of(user: str) -> str:
    return "one" if user == "alice" else "alice/one"


async def ask(http: httpx.AsyncClient, j: UserJupyter, tokens: int) -> tuple[int, float, bytes, dict[str, str]]:
    body = {"model": model_of(j.user), "messages": [{"role": "user", "content": "Count from 1 to 50."}],
            "max_tokens": tokens, "temperature": 0, "stream": True}
    t0 = time.monotonic()
    r = await http.post(f"{j.base}/xgen/v1/chat/completions", json=body, headers=j.headers)
    return r.status_code, time.monotonic() - t0, r.content, dict(r.headers)


def complete(body: bytes) -> bool:
    return b'"content"' in body and body.rstrip().endswith(b"data: [DONE]") and b'"error"' not in body


async def queue_of(http: httpx.AsyncClient, alice: UserJupyter) -> dict[str, Any]:
    r = await http.get(f"{alice.base}/xgen/api/servers/one", headers=alice.headers)
    return r.json()["queue"] or {}  # type: ignore[no-any-return]


async def until(pred: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not await pred():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.05)


def queue_events(alice: UserJupyter, seen: list[dict[str, Any]], stop: threading.Event) -> threading.Thread:
    """Alice's events socket, as the sidebar follows it: the service's queue events, relayed."""
    sock = websocket.create_connection(f"ws://127.0.0.1:{alice.port}/xgen/api/events?interval=0", timeout=1,
                                       header=[f"Authorization: token {alice.token}"])

    def run() -> None:
        try:
            while not stop.is_set():
                try:
                    msg = json.loads(sock.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if msg.get("kind") == "queue":
                    seen.append(msg)
        finally:
            sock.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


async def burst_round(http: httpx.AsyncClient, users: dict[str, UserJupyter], tokens: int) -> tuple[float, list[int]]:
    """Light users' requests on the idle server, then during a burst of 20 of alice's, then idle again:
    (their median latency during the burst / on the idle server, alice's answers ahead of each)."""
    alice, bob, carol = users["alice"], users["bob"], users["carol"]

    async def light() -> list[float]:
        got = await asyncio.gather(*(ask(http, j, tokens) for j in (bob, carol) * 2))
        assert [c for c, *_ in got] == [200] * 4 and all(complete(b) for _, _, b, _ in got), got
        return [t for _, t, _, _ in got]

    idle_before = await light()
    started = time.monotonic()
    burst = [asyncio.ensure_future(ask(http, alice, tokens)) for _ in range(20)]

    async def queued() -> bool:
        return int((await queue_of(http, alice)).get("queued", 0)) >= 15

    await until(queued)
    snap = await queue_of(http, alice)
    assert snap["slots"] == 1 and snap["in_flight"] == 1 and snap["limit"] == LIMIT, snap
    assert snap["positions"]["alice"][0] == 1 and len(snap["positions"]["alice"]) == snap["queued"], snap
    metrics = (await http.get(f"{alice.base}/xgen/metrics", headers=alice.headers)).text
    depth = [ln for ln in metrics.splitlines() if ln.startswith('xgen_queue_depth{server="one"}')]
    assert depth and float(depth[0].split()[-1]) >= 14, depth  # Prometheus sees the service's queue too
    light_at = time.monotonic()
    during = await light()
    heavy = await asyncio.gather(*burst)
    # Every request answered (or an explicit 429): none lost, none hung, none cut short.
    assert all(c in (200, 429) for c, *_ in heavy) and sum(c == 200 for c, *_ in heavy) >= 15, heavy
    assert all(complete(b) for c, _, b, _ in heavy if c == 200)
    assert (await queue_of(http, alice))["queued"] == 0
    alice_done = sorted(started + t for c, t, _, _ in heavy if c == 200)
    ahead = [sum(a < light_at + t for a in alice_done) for t in during]
    # Idle measured before and after the burst, so a change in the box's load hits both sides.
    idle = statistics.median(idle_before + await light())
    return statistics.median(during) / idle, ahead


async def test_light_users_are_not_queued_behind_a_burst(box: tuple[BoxProc, dict[str, UserJupyter]]) -> None:
    _, users = box
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    follower = queue_events(users["alice"], seen, stop)
    rounds: list[tuple[float, list[int]]] = []
    async with httpx.AsyncClient(timeout=300, trust_env=False) as http:
        for j in (users["bob"], users["carol"]):
            await ask(http, j, 6)  # warm the engine's caches and each proxy's first-request set-up
        while len(rounds) < 3:
            rounds.append(await burst_round(http, users, 6))
            # Round-robin: each light request is answered within a few of alice's (first come first
            # served: after the ~19 she had waiting). Counted, so the box's load cannot blur it.
            assert max(rounds[-1][1]) <= 8, rounds
            # The measure: their median latency within 3x of theirs on the idle server (first
            # come first served measured 6.6x). Wall clock on 2 cores shared by six engineers' runs (load
            # average up to 20 here): another round where a stall of the box made it fail.
            if rounds[-1][0] <= 3:
                break
    stop.set()
    follower.join(5)
    assert rounds[-1][0] <= 3, rounds
    deep = [m for m in seen if m["data"]["queued"] >= 15]
    assert deep and deep[0]["server"] == "one" and set(deep[0]["data"]["positions"]) >= {"alice"}, seen[-3:]
    mixed = [m for m in seen if {"bob", "carol"} <= set(m["data"]["positions"])]
    assert mixed, "bob's and carol's waiting requests never showed in the queue events"


def connections(service: BoxProc) -> int:
    """The service's open connections (its Unix sockets but the listening one)."""
    assert service.proc is not None
    return len(psutil.Process(service.proc.pid).net_connections("unix")) - 1


async def settled(service: BoxProc) -> int:
    """Its connections once the proxies' short calls (closed a moment after their reply) are gone."""
    seen = []
    for _ in range(10):
        seen.append(connections(service))
        await asyncio.sleep(0.05)
    return min(seen)


async def test_queue_limit_disconnect_and_engine_killed(box: tuple[BoxProc, dict[str, UserJupyter]]) -> None:
    service, users = box
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    async with httpx.AsyncClient(timeout=300, trust_env=False) as http:
        pid = (await http.get(f"{alice.base}/xgen/api/servers/one", headers=alice.headers)).json()["pid"]
        await ask(http, bob, 1)  # bob's proxy follows the service's events from its first request on
        long = asyncio.ensure_future(ask(http, alice, 400))

        async def in_flight() -> bool:
            return int((await queue_of(http, alice)).get("in_flight", 0)) == 1

        await until(in_flight)

        async def queued_is(n: int) -> bool:
            return int((await queue_of(http, alice)).get("queued", -1)) == n

        # bob's client leaves while its request waits: the service dequeues it at once.
        before = await settled(service)
        async with httpx.AsyncClient(timeout=300, trust_env=False) as leaver:
            gone = asyncio.ensure_future(ask(leaver, bob, 4))
            await until(lambda: queued_is(1))
            gone.cancel()
        await until(lambda: queued_is(0), 10)

        async def no_leak() -> bool:  # (fewer is fine: a follower of the last test's websocket may end)
            return await settled(service) <= before

        await until(no_leak, 10)  # nothing left of it in the service: no connection, no thread waiting
        # Fill the queue to its limit (three users' proxies); one more is told to come back later.
        waiters = [asyncio.ensure_future(ask(http, j, 4)) for j in (bob, carol, alice) * (LIMIT // 3)]
        await until(lambda: queued_is(LIMIT))
        code, _, body, headers = await ask(http, carol, 4)
        assert code == 429 and b"queue_full" in body and int(headers["retry-after"]) >= 1, (code, body, headers)
        # The engine dies while LIMIT requests wait: each gets an error within about a second.
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        done = await asyncio.wait_for(asyncio.gather(*waiters), 20)
        took = time.monotonic() - killed
        # 503 engine_gone (the queue closed), or 502/503 for one whose turn came as the engine died
        assert all(c in (502, 503) and json.loads(b)["error"]["message"] for c, _, b, _ in done), done
        # (in 3 runs 21-24 of the 24 were engine_gone; the others got the slot as the engine died: 502)
        assert sum(b"engine_gone" in b for _, _, b, _ in done) >= LIMIT // 2, done
        assert took < 1.0, took  # measured 0.05 s
        await long
        state = (await http.get(f"{alice.base}/xgen/api/servers/one", headers=alice.headers)).json()
        assert state["state"] == "crashed" and state["queue"]["queued"] == 0, state


async def test_service_killed_while_requests_wait_then_restarted(box: tuple[BoxProc, dict[str, UserJupyter]],
                                                                 shared_models: Any) -> None:
    service, users = box
    alice, bob = users["alice"], users["bob"]
    load = {"model": str(shared_models / "gemma.gguf"), "name": "two", "n_parallel": 1, "n_ctx": 1024}

    def ready_two() -> None:
        assert alice.api("POST", "servers", json=load).status_code == 202
        assert alice.wait_state("two", {"ready", "failed"})["state"] == "ready"
        r = alice.api("POST", "servers/two/share", json={"users": ["bob"]})
        assert r.status_code == 200, r.text

    ready_two()
    async with httpx.AsyncClient(timeout=300, trust_env=False) as http:
        async def queued(n: int, key: str = "queued") -> bool:
            r = await http.get(f"{alice.base}/xgen/api/servers/two", headers=alice.headers)
            return int((r.json()["queue"] or {}).get(key, -1)) == n

        body = {"model": "two", "messages": [{"role": "user", "content": "Count from 1 to 500."}], "max_tokens": 400,
                "stream": True}
        long = asyncio.ensure_future(http.post(f"{alice.base}/xgen/v1/chat/completions", json=body,
                                               headers=alice.headers))
        await until(lambda: queued(1, "in_flight"))
        waiters = [asyncio.ensure_future(ask_model(http, j, m)) for j, m in
                   ((alice, "two"), (bob, "alice/two"), (alice, "two"))]
        await until(lambda: queued(3))
        killed = time.monotonic()
        service.kill()  # every slot and waiter goes with it
        done = await asyncio.wait_for(asyncio.gather(*waiters), 20)
        took = time.monotonic() - killed
        assert [c for c, *_ in done] == [503] * 3 and all(b"box service" in b for _, _, b, _ in done), done
        assert took < 1.0, took
        await long  # its engine died with the service: the stream ends (with an error event)
        service.start()  # as systemd would
        assert alice.api("GET", "servers").json()["servers"] == []  # engines are not re-adopted
        ready_two()
        code, _, answer, _ = await ask_model(http, bob, "alice/two")
        assert code == 200 and complete(answer), answer
        assert await queued(0)


async def ask_model(http: httpx.AsyncClient, j: UserJupyter, model: str) -> tuple[int, float, bytes, dict[str, str]]:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "stream": True}
    t0 = time.monotonic()
    r = await http.post(f"{j.base}/xgen/v1/chat/completions", json=body, headers=j.headers)
    return r.status_code, time.monotonic() - t0, r.content, dict(r.headers)
