"""evalkit's API backend against the physical limit and the seed's thread-pool client.

Loopback OpenAI-compatible servers (tests/servers/openai_stub.py, each its own process),
100 ms latency, concurrency 64, 5 retries, 10 s attempt timeout. Every evalkit figure is a
whole process (``python`` start, imports, the run, each result appended to a JSONL file as it
completes), like a user's command. Rows, side by side in one run:

* the physical limit: ceil(N / concurrency) x latency, plus an empty Python start;
* evalkit, clean server; then a cached re-run (same process shape, answers from the cache);
* evalkit, faulty server (3% HTTP 500, 2% HTTP 429 with Retry-After, 1% hang 30 s), hedging
  on and off;
* the seed's client: 5 processes x 5 threads of ``requests``, each thread sending its share one
  by one, 2 attempts on timeouts only, results written at the end (a 500/429 fails the sample);
* a rate-limited server (admits 40 requests/s, 429 with Retry-After beyond): time against
  N / 40 and the share of replies that were 429 after the first 5 s;
* two servers of 32 requests each at once (``max_concurrent``): one endpoint vs both;
  and both with one killed (``kill -9``) mid-run: completion and each sample once.

    python benchmarks/api_throughput.py             # 1500 requests (about 2 minutes)
    python benchmarks/api_throughput.py --n 500     # quicker

Needs ``requests`` for the seed's client (``pip install requests``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "servers" / "openai_stub.py"
SEED_PROCESSES = 5
SEED_THREADS = 5


class Server:
    """One stub server process, configured and read over HTTP."""

    def __init__(self, **options: Any) -> None:
        args = [sys.executable, str(STUB)]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith("READY "):
            self.proc.kill()
            raise SystemExit(f"stub server did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]
        self.root = self.base_url.rsplit("/v1", 1)[0]

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        request = urllib.request.Request(self.root + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as reply:
            return json.loads(reply.read())

    def configure(self, **options: Any) -> None:
        self._post("/_config", options)
        self._post("/_reset", {})

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.root + "/_stats") as reply:
            return json.loads(reply.read())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def make_conversations(n: int) -> list[list[dict[str, str]]]:
    conversations = []
    for i in range(n):
        label = [{"toolName": "priceCheck", "paramList": {"priceType": "总价", "value": f"{1000 + i}元"}}]
        user = f"历史对话：[\"司机：货还在吗？\"]\n当前query：\"运费多少？\" #{i}\n#expect: {json.dumps({'label': label}, ensure_ascii=False)}"
        conversations.append([{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": user}])
    return conversations


# -- evalkit, as its own process ----------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """Runs in the measured process: build the backend, answer every request, append JSONL."""
    from evalkit.cache import ResponseCache
    from evalkit.types import GenerationConfig, Request
    from evalkit_api.backend import ApiBackend

    cache = ResponseCache(args.cache_dir) if args.cache_dir else None
    generation = GenerationConfig(max_new_tokens=512, temperature=0.8, seed=1 if cache is not None else None)
    backend = ApiBackend(
        base_url=args.urls.split(","), model="m", concurrency=args.concurrency, api_key_env=None, generation=generation,
        timeout=10.0, max_retries=5, hedge=args.hedge == "on", cache=cache,
    )
    requests = [Request(index=i, id=i, messages=m) for i, m in enumerate(make_conversations(args.n))]
    seen: list[int] = []
    ok = 0
    with open(args.out, "w", encoding="utf-8") as fh:

        def on_result(result: Any) -> None:
            nonlocal ok
            ok += result.ok
            seen.append(result.index)
            fh.write(json.dumps({"index": result.index, "output": result.outputs, "error": result.error}, ensure_ascii=False) + "\n")
            fh.flush()
            if args.kill_pid and len(seen) == args.n // 3:
                os.kill(args.kill_pid, signal.SIGKILL)

        backend.generate(requests, on_result)
    if cache is not None:
        cache.close()
    print(json.dumps({"ok": ok, "unique": len(set(seen)), "delivered": len(seen), "stats": backend.stats()}))


def run_evalkit(urls: list[str], n: int, concurrency: int, out: Path, *, hedge: bool = True, cache_dir: Path | None = None, kill: Server | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--urls", ",".join(urls), "--n", str(n), "--concurrency", str(concurrency), "--hedge", "on" if hedge else "off", "--out", str(out / "evalkit.jsonl")]
    if cache_dir:
        cmd += ["--cache-dir", str(cache_dir)]
    if kill:
        cmd += ["--kill-pid", str(kill.proc.pid)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"evalkit run failed:\n{proc.stderr[-3000:]}")
    return {"wall": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


# -- the seed's client ---------------------------------------------------------------------
def _seed_single(url: str, messages: list[dict[str, str]]) -> bool:
    import requests

    payload = {"model": "m", "messages": messages, "temperature": 0.8, "max_tokens": 512, "stream": False}
    for _ in range(2):  # two attempts, and only a timeout earns the second
        try:
            reply = requests.post(url, json=payload, timeout=10)
            return bool(reply.json()["choices"][0]["message"]["content"])
        except requests.exceptions.Timeout:
            continue
        except Exception:  # a 500/429 body has no "choices": the sample fails
            return False
    return False


def _seed_process(chunk: list[list[dict[str, str]]], url: str) -> list[bool]:
    parts = [chunk[t::SEED_THREADS] for t in range(SEED_THREADS)]
    with ThreadPoolExecutor(max_workers=SEED_THREADS) as pool:
        return [ok for part in pool.map(lambda part: [_seed_single(url, m) for m in part], parts) for ok in part]


def run_seed(base_url: str, conversations: list[list[dict[str, str]]], out: Path) -> dict[str, Any]:
    url = base_url + "/chat/completions"
    start = time.perf_counter()
    with Pool(processes=SEED_PROCESSES) as pool:
        parts = pool.starmap(_seed_process, [(conversations[p::SEED_PROCESSES], url) for p in range(SEED_PROCESSES)])
    results = [ok for part in parts for ok in part]
    (out / "seed.json").write_text(json.dumps(results), encoding="utf-8")  # at the very end
    return {"wall": time.perf_counter() - start, "ok": sum(results)}


def python_start() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=40.0, help="requests/s the rate-limited server admits")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--urls", default="", help=argparse.SUPPRESS)
    parser.add_argument("--hedge", default="on", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--kill-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if importlib.util.find_spec("requests") is None:
        raise SystemExit("the seed's client needs `requests`: pip install requests")

    n, c = args.n, args.concurrency
    faulty = {"p500": 0.03, "p429": 0.02, "retry_after": 0.5, "p_slow": 0.01, "slow_delay": 30.0}
    clean = {"p500": 0.0, "p429": 0.0, "p_slow": 0.0}
    rows: list[tuple[str, float, str, str]] = []
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            main_server = Server(latency=args.latency, model="m", seed=0)
            servers.append(main_server)
            url = main_server.base_url
            start = python_start()
            limit = math.ceil(n / c) * args.latency
            rows.append(("physical limit: ceil(N/c) x latency + python start", limit + start, "100%", ""))
            print(f"{n} requests, latency {args.latency * 1000:.0f} ms, concurrency {c}; faulty = 3% HTTP 500, 2% 429 (Retry-After 0.5 s), 1% hang 30 s", flush=True)

            clean_run = run_evalkit([url], n, c, out, cache_dir=out / "cache")
            rows.append(("evalkit clean (whole process)", clean_run["wall"], f"{clean_run['ok'] / n:.1%}", str(main_server.stats()["total"])))
            main_server.configure()
            cached = run_evalkit([url], n, c, out, cache_dir=out / "cache")
            rows.append(("evalkit cached re-run", cached["wall"], f"{cached['ok'] / n:.1%}", str(main_server.stats()["total"])))

            main_server.configure(**faulty)
            hedged = run_evalkit([url], n, c, out)
            sent = main_server.stats()["total"]
            rows.append((f"evalkit faulty, hedging on ({hedged['stats']['num_hedged']} hedged)", hedged["wall"], f"{hedged['ok'] / n:.1%}", str(sent)))
            main_server.configure(**faulty)
            unhedged = run_evalkit([url], n, c, out, hedge=False)
            sent_unhedged = main_server.stats()["total"]
            rows.append(("evalkit faulty, hedging off", unhedged["wall"], f"{unhedged['ok'] / n:.1%}", str(sent_unhedged)))

            main_server.configure(**faulty)
            seed = run_seed(url, make_conversations(n), out)
            rows.append((f"seed's client {SEED_PROCESSES}x{SEED_THREADS} threads, faulty", seed["wall"], f"{seed['ok'] / n:.1%}", str(main_server.stats()["total"])))
            main_server.configure(**clean)
            seed_clean = run_seed(url, make_conversations(n), out)
            rows.append((f"seed's client {SEED_PROCESSES}x{SEED_THREADS} threads, clean", seed_clean["wall"], f"{seed_clean['ok'] / n:.1%}", str(main_server.stats()["total"])))

            main_server.configure(**clean, rate_limit=args.rate, rate_burst=1.0)
            limited = run_evalkit([url], n, c, out)
            timeline = main_server.stats()["timeline"]
            late = [status for t, status in timeline if t >= 5.0]
            late_429 = sum(1 for s in late if s == "429") / max(1, len(late))
            rows.append((f"evalkit vs a server admitting {args.rate:g} req/s", limited["wall"], f"{limited['ok'] / n:.1%}", f"{len(timeline)}"))
            main_server.configure(**clean, rate_limit=0.0)

            pair = [Server(latency=args.latency, model="m", max_concurrent=32) for _ in range(2)]
            servers += pair
            one = run_evalkit([pair[0].base_url], n, c, out)
            rows.append(("evalkit, one endpoint serving 32 at once", one["wall"], f"{one['ok'] / n:.1%}", ""))
            two = run_evalkit([s.base_url for s in pair], n, c, out)
            rows.append(("evalkit, two such endpoints", two["wall"], f"{two['ok'] / n:.1%}", ""))
            killed = run_evalkit([s.base_url for s in pair], n, c, out, kill=pair[0])
            once = killed["unique"] == killed["delivered"] == n
            rows.append(("evalkit, two endpoints, one killed mid-run", killed["wall"], f"{killed['ok'] / n:.1%}", ""))
    finally:
        for server in servers:
            server.close()

    print(f"\n{'':<58} {'wall s':>8} {'complete':>9} {'requests':>9}")
    for name, t, ok, sent_count in rows:
        print(f"{name:<58} {t:>8.2f} {ok:>9} {sent_count:>9}")
    print()
    print(f"evalkit clean / physical limit           : {clean_run['wall'] / (limit + start):.2f}x   (clean whole process {clean_run['wall']:.2f} s, target <= 4 s)")
    print(f"evalkit faulty (hedged) / evalkit clean  : {hedged['wall'] / clean_run['wall']:.2f}x   (target <= 1.3; unhedged {unhedged['wall'] / clean_run['wall']:.2f}x)")
    print(f"extra requests from hedging              : {hedged['stats']['num_hedged'] / n:.1%}   (target <= 3%)")
    print(f"seed's client / evalkit, faulty          : {seed['wall'] / hedged['wall']:.2f}x   (seed completes {seed['ok'] / n:.1%})")
    print(f"rate-limited: time / (N / rate)          : {limited['wall'] / (n / args.rate):.2f}x   (target <= 1.2); 429 share after 5 s: {late_429:.1%} (target < 10%)")
    fixed = cached["wall"]  # a whole process that sends nothing: start, imports, cache reads
    print(f"two endpoints / one (throughput)         : {(one['wall'] - fixed) / max(1e-9, two['wall'] - fixed):.2f}x   (target >= 1.8; request time = wall - {fixed:.2f} s fixed cost; whole process {one['wall'] / two['wall']:.2f}x)")
    print(f"one of two killed: complete {killed['ok'] / n:.1%}, each sample once: {once}; per endpoint: " + json.dumps({k.rsplit(':', 1)[-1]: {"ok": v["ok"], "taken_out": v["taken_out"]} for k, v in killed["stats"]["endpoints"].items()}))


if __name__ == "__main__":
    main()
