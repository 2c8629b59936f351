"""evalkit's API backend vs. the seed's 5 processes x 5 threads `requests` client.

One loopback OpenAI-compatible server (tests/servers/openai_stub.py, its own process) with
100 ms latency, 3% HTTP 500 and 2% HTTP 429 (small Retry-After). On the same requests:

* evalkit: ``ApiBackend`` at concurrency 64, default retry settings, each result appended to
  a JSONL file as it completes (as the pipeline does);
* the seed's client, rewritten from its description: the data split into 5 contiguous chunks
  for 5 processes, each split again into 5 chunks for 5 threads that send their chunk one by
  one; 2 attempts, retrying only on timeouts; a 500/429 reply is a failed sample; results
  written once at the very end; then the seed's second script, which re-sends the failures;
* both again on a fault-free server, to see what the faults cost.

Prints wall time and the share of samples completed side by side, and the ratios
(evalkit faulty / evalkit fault-free, target <= 1.3; seed / evalkit).

    python benchmarks/api_throughput.py            # ~2000 requests, well under a minute
    python benchmarks/api_throughput.py --n 500    # quicker

Needs ``requests`` for the baseline (``pip install requests``) and aiohttp for the server.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from multiprocessing import Pool
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "servers" / "openai_stub.py"

SEED_PROCESSES = 5
SEED_THREADS = 5
SEED_TIMEOUT = 120


# -- the server ---------------------------------------------------------------------------
class Server:
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

    def requests_sent(self) -> int:
        with urllib.request.urlopen(self.root + "/_stats") as reply:
            return int(json.loads(reply.read())["total"])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def make_conversations(n: int) -> list[list[dict[str, str]]]:
    conversations = []
    for i in range(n):
        label = [{"toolName": "priceCheck", "paramList": {"priceType": "总价", "value": f"{1000 + i}元"}}]
        user = f"历史对话：[\"司机：货还在吗？\"]\n当前query：\"运费多少？\" #{i}\n#expect: {json.dumps({'label': label}, ensure_ascii=False)}"
        conversations.append([{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": user}])
    return conversations


# -- evalkit ------------------------------------------------------------------------------
def run_evalkit(base_url: str, conversations: list[list[dict[str, str]]], concurrency: int, out_dir: Path) -> tuple[float, int]:
    from evalkit.types import GenerationConfig, Request
    from evalkit_api.backend import ApiBackend

    generation = GenerationConfig(max_new_tokens=8000, temperature=0.8, seed=None)
    backend = ApiBackend(base_url=base_url, model="m", concurrency=concurrency, api_key_env=None, generation=generation)
    requests = [Request(index=i, id=i, messages=m) for i, m in enumerate(conversations)]
    ok = 0
    with (out_dir / "evalkit.jsonl").open("w", encoding="utf-8") as fh:

        def on_result(result: Any) -> None:
            nonlocal ok
            ok += result.ok
            fh.write(json.dumps({"index": result.index, "output": result.outputs, "error": result.error}, ensure_ascii=False) + "\n")
            fh.flush()

        start = time.perf_counter()
        backend.generate(requests, on_result)
        elapsed = time.perf_counter() - start
    return elapsed, ok


# -- the seed's client (rewritten from its description) -----------------------------------
def _seed_single(url: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    import requests

    payload = {"model": "m", "messages": messages, "temperature": 0.8, "max_tokens": 8000, "stream": False}
    headers = {"Content-Type": "application/json", "Authorization": "Bearer not-needed"}
    last_error = None
    for attempt in range(2):  # two attempts, and only a timeout earns the second
        try:
            reply = requests.post(url, headers=headers, json=payload, timeout=SEED_TIMEOUT)
            try:
                body = reply.json()
            except ValueError:
                return {"status": reply.status_code, "result": None, "error": "invalid JSON"}
            return {"status": reply.status_code, "result": body["choices"][0]["message"]["content"], "error": None}
        except requests.exceptions.Timeout as exc:
            last_error = str(exc)
        except Exception as exc:  # a 500/429 body has no "choices": the sample fails
            return {"status": None, "result": None, "error": repr(exc)}
    return {"status": None, "result": None, "error": last_error}


def _seed_process(chunk: list[list[dict[str, str]]], url: str) -> list[dict[str, Any]]:
    size, extra = divmod(len(chunk), SEED_THREADS)
    parts, start = [], 0
    for t in range(SEED_THREADS):
        end = start + size + (1 if t < extra else 0)
        parts.append((start, chunk[start:end]))
        start = end
    results: list[dict[str, Any] | None] = [None] * len(chunk)

    def thread(part: list[list[dict[str, str]]]) -> list[dict[str, Any]]:
        return [_seed_single(url, messages) for messages in part]  # one by one within a thread

    with ThreadPoolExecutor(max_workers=SEED_THREADS) as pool:
        futures = {pool.submit(thread, part): offset for offset, part in parts}
        for future in as_completed(futures):
            offset = futures[future]
            for j, res in enumerate(future.result()):
                results[offset + j] = res
    return results  # type: ignore[return-value]


def seed_pass(url: str, conversations: list[list[dict[str, str]]]) -> list[dict[str, Any]]:
    size, extra = divmod(len(conversations), SEED_PROCESSES)
    chunks, start = [], 0
    for p in range(SEED_PROCESSES):
        end = start + size + (1 if p < extra else 0)
        chunks.append(conversations[start:end])
        start = end
    with Pool(processes=SEED_PROCESSES) as pool:
        parts = pool.starmap(_seed_process, [(chunk, url) for chunk in chunks])
    return [r for part in parts for r in part]


def run_seed(base_url: str, conversations: list[list[dict[str, str]]], out_dir: Path, retry_pass: bool) -> tuple[float, int, float, int]:
    url = base_url + "/chat/completions"
    start = time.perf_counter()
    results = seed_pass(url, conversations)
    (out_dir / "seed.json").write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")  # at the very end
    first_time = time.perf_counter() - start
    first_ok = sum(1 for r in results if r["error"] is None and r["result"] is not None)
    if not retry_pass:
        return first_time, first_ok, first_time, first_ok
    failed = [i for i, r in enumerate(results) if r["error"] is not None or r["result"] is None]
    if failed:  # the seed's second script: re-send the failures with the same client
        retried = seed_pass(url, [conversations[i] for i in failed])
        for i, r in zip(failed, retried):
            results[i] = r
        (out_dir / "seed.json").write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    total_time = time.perf_counter() - start
    total_ok = sum(1 for r in results if r["error"] is None and r["result"] is not None)
    return first_time, first_ok, total_time, total_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--p500", type=float, default=0.03)
    parser.add_argument("--p429", type=float, default=0.02)
    parser.add_argument("--retry-after", type=float, default=0.2)
    args = parser.parse_args()
    if importlib.util.find_spec("requests") is None:
        raise SystemExit("the baseline needs `requests`: pip install requests")

    conversations = make_conversations(args.n)
    faulty = {"p500": args.p500, "p429": args.p429, "retry_after": args.retry_after}
    clean = {"p500": 0.0, "p429": 0.0}
    server = Server(latency=args.latency, model="m", seed=0)
    rows: list[tuple[str, float, int, int]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            print(f"{args.n} requests, server latency {args.latency * 1000:.0f} ms, faults: {args.p500:.0%} HTTP 500, {args.p429:.0%} HTTP 429 (Retry-After {args.retry_after:g}s)", flush=True)
            server.configure(**faulty)
            t, ok = run_evalkit(server.base_url, conversations, args.concurrency, out)
            rows.append((f"evalkit api, concurrency {args.concurrency}, faulty", t, ok, server.requests_sent()))
            server.configure(**clean)
            t, ok = run_evalkit(server.base_url, conversations, args.concurrency, out)
            rows.append((f"evalkit api, concurrency {args.concurrency}, fault-free", t, ok, server.requests_sent()))
            server.configure(**faulty)
            t1, ok1, t2, ok2 = run_seed(server.base_url, conversations, out, retry_pass=True)
            sent = server.requests_sent()
            rows.append(("seed 5x5 requests, faulty", t1, ok1, -1))
            rows.append(("seed 5x5 + its retry script, faulty", t2, ok2, sent))
            server.configure(**clean)
            t, ok, _, _ = run_seed(server.base_url, conversations, out, retry_pass=False)
            rows.append(("seed 5x5 requests, fault-free", t, ok, server.requests_sent()))
    finally:
        server.close()

    print(f"\n{'client':<42} {'wall s':>8} {'complete':>9} {'requests':>9}")
    for name, t, ok, sent in rows:
        print(f"{name:<42} {t:>8.2f} {ok / args.n:>9.1%} {sent if sent >= 0 else '':>9}")
    ek_faulty, ek_clean, seed_faulty, seed_retry, _ = rows
    print()
    print(f"evalkit faulty / evalkit fault-free        : {ek_faulty[1] / ek_clean[1]:.2f}x  (target <= 1.3)")
    print(f"seed faulty / evalkit faulty (wall time)   : {seed_faulty[1] / ek_faulty[1]:.2f}x  (seed completes {seed_faulty[2] / args.n:.1%}, evalkit {ek_faulty[2] / args.n:.1%})")
    print(f"seed + retry script / evalkit (wall time)  : {seed_retry[1] / ek_faulty[1]:.2f}x  (seed completes {seed_retry[2] / args.n:.1%})")


if __name__ == "__main__":
    main()
