"""Benchmark of `pcopilot serve` against calling `model.generate` directly, measured in the same run.

    .venv/bin/python benchmarks/serve.py                  # scratch:small (~21M parameters), 64 new tokens, 5 repeats
    .venv/bin/python benchmarks/serve.py --new-tokens 128 --repeats 3 --concurrency 8 --threads 4

(from the repository root; set PYTHONPATH=. when personal_copilot is not installed in the environment.)

The model is built locally, offline: a byte-level BPE tokenizer (StarCoder family, 8192 tokens) trained on this
project's own source, and `scratch:small` (Llama-style, 6 layers of 512) initialised from config and saved to a
temporary directory. `pcopilot serve` runs in a subprocess on a free loopback port; the baseline runs in this process
on the same weights (the engine's own model object) with the same greedy settings (`engine.generation_config`: KV
cache, the same stop tokens), so both do the same work, and the benchmark checks that they return the same text.

- (a) latency: one `POST /generate` against one `model.generate` call, prompt by prompt, medians over the repeats;
  the goal is at most 1.10x (HTTP, JSON, queueing, per-token decoding and stop checks cost little next to the model).
- (b) throughput: 8 requests sent at once (they are generated as one batch) against the same 8 sent one after the
  other; the goal is at least 3x.
- (c) keep-alive: medians of `GET /health` and of a one-token `POST /generate` on a reused connection against a fresh
  connection per request; the goal is at most 1.0x (a server without TCP_NODELAY makes every reused connection wait
  ~40 ms for the client's delayed ACK).
- (d) the worst request: an OpenAI prompt list of `--worst-prompts` tiny prompts with n=16 (a small body asking for
  many completions), sent while another connection polls `/health`; reports the longest `/health` answer meanwhile
  against its median (a server that tokenizes such a request on its event loop freezes for seconds).
- (e) the front: a second `pcopilot serve --engine URL` in front of the first (the engine), against calling the
  engine directly, both on kept-alive connections: one request (goal <= 1.10x), the time it adds to a one-token
  request at the median (goal <= 5 ms), and the throughput of `--concurrency` clients at once through the front
  against the same clients sent to the engine (goal >= 0.9x); the front's answers must equal the engine's.

Both sides use `--threads` torch threads (default 1): on a machine whose cores other work also uses, OpenMP threads
that spin for a busy core make every timing several times slower and noisy, whichever side runs. Progress bars are off
(PCOPILOT_PROGRESS=0). Nothing outside the temporary directory is written.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


def build_model(directory: Path) -> None:
    """A tokenizer trained on this repository's source and `scratch:small` sized to it, saved to `directory`."""
    from personal_copilot.dataset import get_family, train_tokenizer
    from personal_copilot.modeling import build_scratch_model

    texts = [p.read_text(encoding="utf-8") for p in sorted(REPO_ROOT.rglob("*.py")) if ".venv" not in p.parts]
    tokenizer = train_tokenizer(texts, get_family("starcoder"), 8192)
    model = build_scratch_model("scratch:small", tokenizer, max_positions=2048, seed=0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    print(f"model: scratch:small, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, vocabulary 8192")


def prompts(count: int, characters: int = 600) -> list[str]:
    """The first `characters` of `count` different source files of this project."""
    files = sorted(p for p in (REPO_ROOT / "personal_copilot").rglob("*.py") if p.stat().st_size > characters)
    return [files[i * len(files) // count].read_text(encoding="utf-8")[:characters] for i in range(count)]


class Server:
    """`pcopilot serve` in a subprocess, on a free port of 127.0.0.1."""

    def __init__(self, model: Path, new_tokens: int, threads: int, log: Path, extra: tuple[str, ...] = ()) -> None:
        from personal_copilot.serve.run import bind_socket

        probe = bind_socket("127.0.0.1", 0)
        port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "personal_copilot", "serve", "--model", str(model), "--port", str(port)]
        command += ["--max_new_tokens", str(new_tokens), "--max_batch_size", "8", "--precision", "fp32", *extra]
        env = os.environ | {"PCOPILOT_PROGRESS": "0", "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": str(threads)}
        self._log = log.open("w")
        self._report = log.with_suffix(".report")
        with self._report.open("w") as report:
            self.process = subprocess.Popen(command, stdout=report, stderr=self._log, env=env)
        deadline = time.monotonic() + 300
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pcopilot serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("pcopilot serve did not start in 300 s")
            time.sleep(0.2)

    def generate(self, prompt: str, new_tokens: int, client: httpx.Client) -> str:
        body = {"inputs": prompt, "parameters": {"max_new_tokens": new_tokens}}
        response = client.post(f"{self.url}/generate", json=body, timeout=600)
        response.raise_for_status()
        return response.json()["generated_text"]

    def stop(self) -> str:
        """Stops the server; returns the batches row of its report (how many batches, the largest)."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()
        rows = [line for line in self._report.read_text().splitlines() if "batches (largest)" in line]
        return " ".join(rows[0].strip("│ ").split()) if rows else "batches: not reported"


def median_seconds(function, count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def keep_alive_latency(url: str, body: dict, count: int) -> dict[str, float]:
    """Medians of /health and of a one-token generate: on one reused connection, and on a fresh one per request."""
    fresh_each_time = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=60) as reused, httpx.Client(timeout=60, limits=fresh_each_time) as fresh:
        reused.get(f"{url}/health")
        times = {}
        for name, client in (("reused", reused), ("fresh", fresh)):
            times[f"health {name}"] = median_seconds(lambda c=client: c.get(f"{url}/health").raise_for_status(), count)
            times[f"generate {name}"] = median_seconds(
                lambda c=client: c.post(f"{url}/generate", json=body).raise_for_status(), count
            )
        return times


def health_while_worst_request(url: str, prompts: int) -> tuple[float, float, int, float]:
    """(median /health alone, longest /health while the worst request is handled, its status, its seconds)."""
    body = {"prompt": ["p"] * prompts, "n": 16, "max_tokens": 1}
    outcome: dict = {}
    with httpx.Client(timeout=600) as poller:
        alone = median_seconds(lambda: poller.get(f"{url}/health"), 20)

        def send() -> None:
            start = time.perf_counter()
            outcome["status"] = httpx.post(f"{url}/v1/completions", json=body, timeout=600).status_code
            outcome["seconds"] = time.perf_counter() - start

        sender = threading.Thread(target=send)
        sender.start()
        longest = 0.0
        while sender.is_alive():
            start = time.perf_counter()
            poller.get(f"{url}/health")
            longest = max(longest, time.perf_counter() - start)
            time.sleep(0.005)
        sender.join()
    return alone, longest, outcome["status"], outcome["seconds"]


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per request")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each measurement (medians reported)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests sent at once in (b)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server and of the baseline")
    parser.add_argument("--latency-requests", type=int, default=30, help="requests per median in (c)")
    parser.add_argument("--worst-prompts", type=int, default=5000, help="prompts (n=16 each) of the worst request")
    parser.add_argument("--front-only", action="store_true", help="measure (e) only")
    args = parser.parse_args()
    os.environ["PCOPILOT_PROGRESS"] = "0"

    import torch

    torch.set_num_threads(args.threads)

    from personal_copilot.serve import GenerationRequest, ServeConfig
    from personal_copilot.serve.engine import TransformersEngine

    with tempfile.TemporaryDirectory(prefix="pcopilot-bench-serve-") as tmp:
        model_dir = Path(tmp) / "model"
        build_model(model_dir)
        engine = TransformersEngine.load(ServeConfig(model=str(model_dir), max_new_tokens=args.new_tokens))
        texts = prompts(args.concurrency)
        prompt_ids = [engine.prepare(GenerationRequest(prompt=p)).prompt_ids for p in texts]
        config = engine.generation_config(args.new_tokens)

        def direct(ids: list[int]) -> str:
            with torch.inference_mode():
                output = engine.model.generate(
                    input_ids=torch.tensor([ids]),
                    attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                    generation_config=config,
                )
            new = [t for t in output[0, len(ids) :].tolist() if t not in engine.stop_ids]
            return engine.decode(new)

        server = Server(model_dir, args.new_tokens, args.threads, Path(tmp) / "serve.log")
        try:
            client = httpx.Client()
            for _ in range(2):  # warm-up: first calls allocate, fill caches, import lazily
                direct(prompt_ids[0])
                server.generate(texts[0], args.new_tokens, client)

            def connected(target: Server) -> list[httpx.Client]:
                """A client per request, connected outside the timing (like `client`)."""
                clients = [httpx.Client() for _ in texts]
                for own in clients:
                    own.get(f"{target.url}/health")
                return clients

            engine_clients = connected(server)

            def concurrent(target: Server = server, clients: list[httpx.Client] = engine_clients) -> list[str]:
                answers: list[str] = [""] * len(texts)
                ready = threading.Barrier(len(texts))

                def ask(i: int) -> None:
                    ready.wait()
                    answers[i] = target.generate(texts[i], args.new_tokens, clients[i])

                threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                return answers

            if not args.front_only:
                # (a) latency of one request
                direct_times, served_times = [], []
                for _ in range(args.repeats):
                    for text, ids in zip(texts[:2], prompt_ids[:2], strict=True):
                        seconds, expected = timed(direct, ids)
                        direct_times.append(seconds)
                        seconds, served = timed(server.generate, text, args.new_tokens, client)
                        served_times.append(seconds)
                        assert served == expected, (
                            f"served text differs from model.generate: {served!r} != {expected!r}"
                        )
                latency_ratio = statistics.median(served_times) / statistics.median(direct_times)

                # (b) throughput: all at once against one after the other
                def sequential() -> list[str]:
                    return [server.generate(text, args.new_tokens, client) for text in texts]

                sequential_times, concurrent_times = [], []
                for _ in range(args.repeats):
                    seconds, one_by_one = timed(sequential)
                    sequential_times.append(seconds)
                    seconds, together = timed(concurrent)
                    concurrent_times.append(seconds)
                throughput_ratio = statistics.median(sequential_times) / statistics.median(concurrent_times)
                generated = sum(len(engine.tokenizer.encode(t, add_special_tokens=False)) for t in one_by_one)

                # (c) keep-alive latency, (d) /health under the worst request
                one_token = {"inputs": texts[0], "parameters": {"max_new_tokens": 1}}
                latency = keep_alive_latency(server.url, one_token, args.latency_requests)
                alone, longest, worst_status, worst_seconds = health_while_worst_request(
                    server.url, args.worst_prompts
                )

            # (e) the front (`pcopilot serve --engine`) against the engine it forwards to
            front = Server(
                model_dir,
                args.new_tokens,
                args.threads,
                Path(tmp) / "front.log",
                ("--engine", server.url, "--engine_timeout", "600"),
            )
            try:
                front_client = httpx.Client()
                for _ in range(2):
                    front.generate(texts[0], args.new_tokens, front_client)
                engine_times, front_times = [], []
                for _ in range(args.repeats):
                    for text in texts[:2]:
                        seconds, expected = timed(server.generate, text, args.new_tokens, client)
                        engine_times.append(seconds)
                        seconds, forwarded = timed(front.generate, text, args.new_tokens, front_client)
                        front_times.append(seconds)
                        assert forwarded == expected, f"the front's text differs: {forwarded!r} != {expected!r}"
                front_ratio = statistics.median(front_times) / statistics.median(engine_times)
                one_token_engine = median_seconds(lambda: server.generate(texts[0], 1, client), args.latency_requests)
                one_token_front = median_seconds(
                    lambda: front.generate(texts[0], 1, front_client), args.latency_requests
                )
                front_clients = connected(front)
                direct_rounds, front_rounds = [], []
                for _ in range(args.repeats):
                    seconds, direct_answers = timed(concurrent, server, engine_clients)
                    direct_rounds.append(seconds)
                    seconds, front_answers = timed(concurrent, front, front_clients)
                    front_rounds.append(seconds)
                front_throughput = statistics.median(direct_rounds) / statistics.median(front_rounds)
            finally:
                front.stop()
        finally:
            batches = server.stop()

    print(
        f"\n{args.new_tokens} new tokens per request (greedy), {args.repeats} repeats, medians; torch threads "
        f"{torch.get_num_threads()}"
    )
    if not args.front_only:
        print(
            f"(a) one request      model.generate {statistics.median(direct_times):7.3f} s   "
            f"POST /generate {statistics.median(served_times):7.3f} s   ratio {latency_ratio:.3f}x  (goal <= 1.10x)"
        )
        print(
            f"(b) {len(texts)} requests     one after another {statistics.median(sequential_times):7.3f} s   "
            f"all at once {statistics.median(concurrent_times):7.3f} s   ratio {throughput_ratio:.2f}x  (goal >= 3x)"
        )
        print(f"    ~{generated} tokens per round; batched answers equal sequential ones: {together == one_by_one}")
        print(f"    server: {batches}")
        print(
            f"(c) keep-alive       GET /health reused {latency['health reused'] * 1000:6.1f} ms   fresh "
            f"{latency['health fresh'] * 1000:6.1f} ms   ratio "
            f"{latency['health reused'] / latency['health fresh']:.2f}x  (goal <= 1.0x)"
        )
        print(
            f"                     1-token /generate reused {latency['generate reused'] * 1000:6.1f} ms   fresh "
            f"{latency['generate fresh'] * 1000:6.1f} ms   ratio "
            f"{latency['generate reused'] / latency['generate fresh']:.2f}x  (goal <= 1.0x)"
        )
        print(
            f"(d) worst request    {args.worst_prompts} prompts x n=16: answered {worst_status} in "
            f"{worst_seconds:.2f} s; longest /health meanwhile {longest * 1000:.1f} ms = {longest / alone:.1f}x its "
            f"median {alone * 1000:.1f} ms"
        )
    print(
        f"(e) front            engine {statistics.median(engine_times):7.3f} s   through the front "
        f"{statistics.median(front_times):7.3f} s   ratio {front_ratio:.3f}x  (goal <= 1.10x)"
    )
    print(
        f"                     1-token /generate: engine {one_token_engine * 1000:6.1f} ms   front "
        f"{one_token_front * 1000:6.1f} ms   added {(one_token_front - one_token_engine) * 1000:5.1f} ms at p50  "
        "(goal <= 5 ms)"
    )
    print(
        f"                     {len(texts)} clients at once: engine {statistics.median(direct_rounds):7.3f} s   front "
        f"{statistics.median(front_rounds):7.3f} s   throughput ratio {front_throughput:.2f}x  (goal >= 0.9x); "
        f"answers equal: {front_answers == direct_answers}"
    )


if __name__ == "__main__":
    main()
