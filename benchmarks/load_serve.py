"""Load test of ``splade-bridge serve`` on loopback: micro-batching on vs off.

Starts the service twice on free ports (``--max-batch 32`` and ``--max-batch 1``, cache off so every
request runs the model), drives it with N concurrent clients for a bounded time and request count,
checks every response against the library's own expansion of the same text, and prints throughput,
p50/p99 latency and the on/off ratio. Stops by itself.

    python benchmarks/load_serve.py [--clients 16] [--seconds 20] [--max-requests 20000]
    python benchmarks/load_serve.py --shapes tiny small distilbert base    # capacity per model size

``--shapes``: the service with each model shape of ``shapes.py`` (random weights, a trained model's cost), batching
on only: requests/s and requests/s per core, the query-side capacity of a model size.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def queries() -> list[str]:
    path = REPO.parent / "shared" / "datasets" / "scifact" / "queries.jsonl"
    if path.exists():
        return [json.loads(line)["text"] for line in open(path)][:500]
    return [json.loads(line)["title"] for line in open(REPO / "bridge" / "samples" / "scifact-200.jsonl")]


def start(max_batch: int, model: str = "splade-tiny") -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "serve", "--port", str(port), "--model", model,
                             "--max-batch", str(max_batch), "--max-wait-ms", "2", "--cache-size", "0"],
                            env=dict(os.environ, HF_HUB_OFFLINE="1"), stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("service did not start")


async def drive(base: str, texts: list[str], clients: int, seconds: float, max_requests: int, expected: dict):
    latencies: list[float] = []
    mismatches = errors = 0
    deadline = time.monotonic() + seconds
    counter = iter(range(max_requests))

    async def client(i: int) -> None:
        nonlocal mismatches, errors
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while time.monotonic() < deadline:
                n = next(counter, None)
                if n is None:
                    return
                text = texts[(n * 7 + i) % len(texts)]
                t0 = time.perf_counter()
                r = await http.post("/expand", json={"text": text})
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1
                    continue
                got, want = r.json()["tokens"], expected[text]
                if set(got) != set(want) or any(abs(got[t] - want[t]) > 1e-5 for t in want):
                    mismatches += 1

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.monotonic() - started
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "mismatches": mismatches,
            "rps": len(latencies) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--shapes", nargs="+", default=None, help="model shapes of shapes.py, batching on only")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = queries()
    if args.shapes:
        return by_shape(args, texts)
    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder

    enc = SpladeEncoder(EncoderConfig(model="splade-tiny"))
    expected = {t: enc.tokens(v) for t, v in zip(texts, enc.encode_query(texts))}
    del enc
    results = {}
    for mode, max_batch in (("batching on", 32), ("batching off", 1)):
        proc, base = start(max_batch)
        try:
            asyncio.run(drive(base, texts, args.clients, 2.0, 200, expected))  # warm-up
            results[mode] = asyncio.run(drive(base, texts, args.clients, args.seconds, args.max_requests, expected))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"{args.clients} concurrent clients, {args.seconds:.0f} s per mode, POST /expand, cache off")
    print(f"{'mode':<14}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'mismatch':>9}")
    for mode, r in results.items():
        print(f"{mode:<14}{r['requests']:>9}{r['rps']:>9.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['errors']:>8}{r['mismatches']:>9}")
    on, off = results["batching on"], results["batching off"]
    print(f"throughput ratio on/off: {on['rps'] / off['rps']:.2f}x; p99 ratio on/off: "
          f"{on['p99_ms'] / off['p99_ms']:.2f}x")
    if any(r["errors"] or r["mismatches"] for r in results.values()):
        raise SystemExit("some responses failed or differed from the library's output")


def expected_tokens(model: str, texts: list[str]) -> dict:
    """The library's own expansion of each text: what every response must equal."""
    from bridge.config import EncoderConfig
    from bridge.encoder import SpladeEncoder

    enc = SpladeEncoder(EncoderConfig(model=model))
    return {t: enc.tokens(v) for t, v in zip(texts, enc.encode_query(texts))}


def by_shape(args, texts: list[str]) -> None:
    import tempfile

    from machine import cpu_model
    from shapes import SHAPES, build, texts_of

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores (the clients share them); {args.clients} concurrent "
          f"clients, {args.seconds:.0f} s per shape, POST /expand, cache off, --max-batch 32")
    print("| shape | requests | req/s | req/s per core | p50 ms | p99 ms | errors | mismatches |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    calibration, _ = texts_of(REPO.parent / "shared" / "datasets" / "scifact", 16, 0)  # as shapes.py calibrates
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes:
            model = str(build(shape, Path(tmp) / shape, calibration, 300))
            expected = expected_tokens(model, texts)
            proc, base = start(32, model)
            try:
                asyncio.run(drive(base, texts, args.clients, 2.0, 200, expected))  # warm-up
                r = asyncio.run(drive(base, texts, args.clients, args.seconds, args.max_requests, expected))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            failed |= bool(r["errors"] or r["mismatches"])
            print(f"| {shape} ({SHAPES[shape][4]}) | {r['requests']} | {r['rps']:.1f} | "
                  f"{r['rps'] / os.cpu_count():.1f} | "
                  f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {r['mismatches']} |", flush=True)
    if failed:
        raise SystemExit("some responses failed or differed from the library's output")


if __name__ == "__main__":
    main()
