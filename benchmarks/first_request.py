"""Load on first request (issue 15): time to first token of a request to a model not loaded,
against an explicit load followed by the same request, through one real Jupyter server.

Each run unloads the model, then either (cold) sends a streamed chat request naming it, or
(explicit) POSTs the load, polls until ready (every 10 ms) and sends the same request. Runs
alternate, so load noise on a shared box hits both. Prints a markdown table of the medians and
what routing adds (cold - explicit). Usage: .venv/bin/python benchmarks/first_request.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.proxy_overhead import cpu_name, jupyter_server

MODEL = "default"


async def first_token(client: openai.AsyncOpenAI, t0: float) -> float:
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0, stream=True)
    ttft = None
    async for chunk in stream:
        if ttft is None and chunk.choices and chunk.choices[0].delta.content:
            ttft = time.monotonic() - t0
    assert ttft is not None, "no token"
    return ttft


async def unload(http: httpx.AsyncClient) -> None:
    r = await http.delete(f"xgen/api/servers/{MODEL}")
    assert r.status_code in (200, 404), r.text


async def explicit(http: httpx.AsyncClient, client: openai.AsyncOpenAI) -> float:
    t0 = time.monotonic()
    r = await http.post("xgen/api/servers", json={"model": MODEL})
    assert r.status_code == 202, r.text
    while (state := (await http.get(f"xgen/api/servers/{MODEL}")).json()["state"]) != "ready":
        assert state in ("planned", "starting", "loading"), state
        await asyncio.sleep(0.01)
    return await first_token(client, t0)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as d, jupyter_server(Path(d)) as (base, token, _keys):
        http = httpx.AsyncClient(base_url=base + "/", headers={"Authorization": f"token {token}"}, timeout=300,
                                 trust_env=False)
        client = openai.AsyncOpenAI(base_url=f"{base}/xgen/v1", api_key=token, max_retries=0, timeout=300)
        await first_token(client, time.monotonic())  # warm the file cache and the engine binary
        cold, manual = [], []
        for _ in range(runs):
            await unload(http)
            cold.append(await first_token(client, time.monotonic()))
            await unload(http)
            manual.append(await explicit(http, client))
        await unload(http)
        await http.aclose()
    c, m = statistics.median(cold), statistics.median(manual)
    print(f"{cpu_name()}, {runs} runs each, default model (gemma-3-270m Q4_K_M)\n")
    print("| path | median TTFT (s) | all (s) |\n|---|---|---|")
    print(f"| first request to a model not loaded | {c:.3f} | {', '.join(f'{x:.2f}' for x in cold)} |")
    print(f"| explicit load, poll until ready, request | {m:.3f} | {', '.join(f'{x:.2f}' for x in manual)} |")
    print(f"\nrouting adds {1000 * (c - m):+.0f} ms (median cold - median explicit)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    asyncio.run(main(ap.parse_args().runs))
