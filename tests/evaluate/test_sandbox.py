"""The sandbox under attack: each hostile program ends as a failed sample, the run goes on, nothing escapes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from personal_copilot.evaluate import Sandbox, SandboxLimits

LIMITS = SandboxLimits(timeout=1.0, memory_mb=256, file_size_mb=1, disk_mb=8)
GOOD = "assert sum(range(5)) == 10"
NOT_CALLABLE = "'NoneType' object is not callable"  # what the guard leaves of os.fork, os.kill, …


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2, limits=LIMITS) as sandbox:
        yield sandbox


def enforced(sandbox: Sandbox, layer: str) -> bool:
    return sandbox.layers.get(layer) == "ok"


HOSTILE = {
    "infinite loop": ("while True:\n    pass", "timed out"),
    "fork loop through the guard": ("import os\nwhile True:\n    os.fork()", f"failed: {NOT_CALLABLE}"),
    "fork loop around the guard": ("import posix\nwhile True:\n    posix.fork()", "failed: "),
    "a process around the guard": ("import os\nos.posix_spawn('/bin/true', ['true'], {})", "failed: "),
    "memory bomb, growing": ("chunks = []\nwhile True:\n    chunks.append(bytes(2**26))", "failed: "),
    "memory bomb, at once": ("x = bytearray(64 * 2**30)", "failed: "),
    # the harness's buffer reaches the memory cap, unless the timeout comes first (a busy machine fills memory slowly)
    "huge output": ("while True:\n    print('x' * 2**20)", ("failed: ", "timed out")),
    "huge file": ("with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)", "failed: "),
    "many files": (
        "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * 2**19)\n    i += 1",
        "failed: [Errno 28]",
    ),
    "kill the parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", "failed: "),
    "kill the parent around the guard": ("import posix\nposix.kill(posix.getppid(), 9)", "failed: "),
    "close stdout, then print": ("import sys\nsys.stdout.close()\nprint('x')", "failed: I/O operation on closed"),
    "close every descriptor": ("import os\nos.closerange(0, 4096)", "failed: no verdict (exit status 0)"),
    "exit before the verdict": ("import os\nos._exit(0)", "failed: no verdict (exit status 0)"),
    "exit through SystemExit": ("raise SystemExit(0)", "failed: 0"),
    "syntax error": ("def f(:\n    pass", "failed: "),
}


def test_hostile_programs_fail_and_the_run_goes_on(sandbox: Sandbox) -> None:
    names = list(HOSTILE)
    if not enforced(sandbox, "seccomp") and os.geteuid() == 0:
        names.remove("fork loop around the guard")  # root without seccomp: nothing stops the fork bomb but the timeout
        names.remove("a process around the guard")
    if not enforced(sandbox, "seccomp") and not enforced(sandbox, "landlock"):
        names.remove("kill the parent around the guard")  # would kill the worker: see the recovery test
    if not enforced(sandbox, "namespaces"):
        names.remove("many files")  # no private tmpfs: they would go to the disk until the timeout
    programs = [HOSTILE[name][0] for name in names] + [GOOD]
    outcomes = sandbox.run(programs)

    for name, outcome in zip(names, outcomes, strict=False):
        assert not outcome.passed, name
        assert outcome.result.startswith(HOSTILE[name][1]), (name, outcome.result)
    assert outcomes[-1].passed  # the workers survived everything above


FORGERS = {
    "then exits": ("os._exit(0)", "failed: no verdict (exit status 0)"),
    "then closes them and exits": ("os.closerange(3, 1024)\nos._exit(0)", "failed: no verdict (exit status 0)"),
    "then fails": ("raise AssertionError('wrong answer')", "failed: wrong answer"),
    "then passes": ("pass", "passed"),  # its own verdict, which the writes before it do not spoil
}


@pytest.mark.parametrize("ending", list(FORGERS))
def test_a_pass_written_to_every_descriptor_is_no_verdict(sandbox: Sandbox, ending: str) -> None:
    """The attack of a program that knows nothing of the sandbox's internals: "passed" (in every spelling a verdict
    channel might expect) to every descriptor it has, the verdict pipe among them; the verdict stays its own."""
    program = (
        "import os\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    for text in (b'passed', b'passed\\n', b'{\"passed\": true, \"result\": \"passed\"}\\n'):\n"
        "        try:\n"
        "            os.write(fd, text * 5000)\n"
        "        except OSError:\n"
        "            pass\n" + FORGERS[ending][0]
    )
    (outcome, after) = sandbox.run([program, GOOD])
    assert outcome.result == FORGERS[ending][1]
    assert after.passed  # the worker's own channel was not disturbed


def unix_listener(kind: int, address: str) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, kind)
    server.bind(address)
    if kind == socket.SOCK_STREAM:
        server.listen()
    server.setblocking(False)
    return server


UNIX_ATTACKS = {
    "connect to a path": (socket.SOCK_STREAM, "s = socket.socket(socket.AF_UNIX)\ns.connect(ADDRESS)"),
    "datagram to a path": (
        socket.SOCK_DGRAM,
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b'x', ADDRESS)",
    ),
    "datagram pair, then to a path": (
        socket.SOCK_DGRAM,
        "a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\na.sendto(b'x', ADDRESS)",
    ),
    "reconnect a stream pair": (socket.SOCK_STREAM, "a, b = socket.socketpair()\na.connect(ADDRESS)", "[Errno 106]"),
    "bind a path of its own": (socket.SOCK_STREAM, "s = socket.socket(socket.AF_UNIX)\ns.bind('mine.sock')"),
    "connect to an abstract name": (socket.SOCK_STREAM, "s = socket.socket(socket.AF_UNIX)\ns.connect(ADDRESS)"),
}


@pytest.mark.parametrize("attack", list(UNIX_ATTACKS))
def test_unix_sockets_reach_nothing_outside(sandbox: Sandbox, tmp_path: Path, attack: str) -> None:
    """A Unix socket with a path (docker.sock, an ssh-agent, D-Bus) lies outside the network namespace, and Landlock
    (ABI <= 7) does not cover connecting to one: only the seccomp filter stops it."""
    if not enforced(sandbox, "seccomp"):
        pytest.skip(f"no seccomp filter here ({sandbox.layers.get('seccomp')}): Unix sockets with a path are open")
    kind, code, *error = UNIX_ATTACKS[attack]
    abstract = "abstract" in attack
    address = f"\0pcopilot-test-{os.getpid()}" if abstract else str(tmp_path / "listener.sock")
    with unix_listener(kind, address) as server:
        (outcome,) = sandbox.run([f"import socket\nADDRESS = {address!r}\n{code}"])
        assert not outcome.passed
        assert outcome.result.startswith("failed: " + (error[0] if error else "[Errno 1] Operation not permitted"))
        with pytest.raises(BlockingIOError):  # nothing came in
            server.accept() if kind == socket.SOCK_STREAM else server.recv(1)


def test_threads_and_connected_pairs_work_as_in_the_harness(sandbox: Sandbox) -> None:
    programs = [
        "import threading\nout = []\nt = threading.Thread(target=out.append, args=(1,))\nt.start()\nt.join()\n"
        "assert out == [1]",
        "from concurrent.futures import ThreadPoolExecutor\nwith ThreadPoolExecutor(4) as pool:\n"
        "    assert list(pool.map(abs, [-1, -2, -3])) == [1, 2, 3]",
        "import socket\na, b = socket.socketpair()\na.sendall(b'x')\nassert b.recv(1) == b'x'",
    ]  # (asyncio, which needs the pair, is in the parity test: its import can outlast 1 s on a busy machine)
    assert [o.result for o in sandbox.run(programs)] == ["passed"] * 3


def test_the_time_limit_counts_the_program_only(sandbox: Sandbox) -> None:
    """The harness's SIGALRM is armed just before the program starts, with the whole limit (sandbox setup is not
    counted); a program that catches its timeout exception and goes on is killed 1 s later."""
    program = "import signal\nleft = signal.getitimer(signal.ITIMER_REAL)[0]\nassert left > 0.9, left"
    catches = "try:\n    while True:\n        pass\nexcept BaseException:\n    pass\nwhile True:\n    pass"
    (fresh, stubborn) = sandbox.run([program, catches])
    assert fresh.passed, fresh.result
    assert stubborn.result == "timed out" and stubborn.seconds >= LIMITS.timeout + 1


def test_stdio_is_the_harness_write_only_buffer(sandbox: Sandbox) -> None:
    programs = {
        "print('\\ud800', 'é')\nimport sys\nsys.stderr.write('x')": "passed",
        "import sys\nsys.stdout.buffer.write(b'x')": "failed: 'WriteOnlyStringIO' object has no attribute 'buffer'",
        "import sys\nsys.stdin.read()": "failed: ",
        "input()": "failed: ",
        "import sys\nsys.stdout.fileno()": "failed: fileno",
    }
    assert [o.result for o in sandbox.run(list(programs))] == list(programs.values())


def test_outcomes_come_back_in_the_order_of_the_programs(sandbox: Sandbox) -> None:
    programs = [GOOD if i % 3 else f"assert {i} == -1, 'no {i}'" for i in range(12)]
    outcomes = sandbox.run(programs)
    assert [o.passed for o in outcomes] == [bool(i % 3) for i in range(12)]
    assert [o.result for o in outcomes if not o.passed] == [f"failed: no {i}" for i in range(0, 12, 3)]


def test_each_program_writes_in_a_fresh_directory_that_goes_away(sandbox: Sandbox) -> None:
    program = (
        "import os\n"
        "assert not os.listdir('.'), os.listdir('.')\n"
        "open('notes.txt', 'w').write('kept here')\n"
        "assert open('notes.txt').read() == 'kept here'\n"
        "assert os.environ['HOME'] == os.environ['TMPDIR'] == os.readlink('/proc/self/cwd')\n"
        "raise AssertionError(os.readlink('/proc/self/cwd'))"
    )
    (first,) = sandbox.run([program])
    (second,) = sandbox.run([program])  # the same worker: it must not find the first one's notes
    assert first.result == second.result
    workdir = Path(first.result.removeprefix("failed: "))
    assert workdir.parent.name.startswith("pcopilot-sandbox-")
    assert not (workdir / "notes.txt").exists()


def test_writes_outside_the_temporary_directory_are_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    if not enforced(sandbox, "landlock"):
        pytest.skip(f"Landlock unavailable here: {sandbox.layers.get('landlock')}")
    target = tmp_path / "outside.txt"
    (outcome,) = sandbox.run([f"open({str(target)!r}, 'w').write('escaped')"])
    assert not outcome.passed and "Permission denied" in outcome.result
    assert not target.exists()


def test_no_network(sandbox: Sandbox) -> None:
    if sandbox.isolation["network"].startswith("open"):
        pytest.skip(f"no way to cut the network here: {sandbox.isolation['network']}")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        (outcome,) = sandbox.run([f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=0.5)"])
        assert not outcome.passed
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing came in


def test_signals_reach_nothing_outside(sandbox: Sandbox) -> None:
    if not enforced(sandbox, "seccomp") and int(sandbox.layers.get("landlock_abi", 0)) < 6:
        pytest.skip("neither seccomp nor Landlock scoping here: kill(-1) would reach this test run")
    (outcome, after) = sandbox.run(["import posix, signal\nposix.kill(-1, signal.SIGKILL)", GOOD])
    assert not outcome.passed and "Operation not permitted" in outcome.result
    assert after.passed


def test_the_environment_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    program = "import os\nassert set(os.environ) <= {'PATH', 'HOME', 'TMPDIR', 'LANG', 'OMP_NUM_THREADS'}, os.environ"
    with Sandbox(workers=1, limits=LIMITS) as fresh:
        (outcome,) = fresh.run([program])
    assert outcome.passed, outcome.result


def test_a_worker_killed_from_outside_is_replaced(sandbox: Sandbox) -> None:
    sandbox.run([GOOD, GOOD])  # both workers started
    for worker in sandbox._slots:
        worker.process.kill()
        worker.process.wait()
    assert all(o.passed for o in sandbox.run([GOOD] * 4))


def test_isolation_is_described_for_reports(sandbox: Sandbox) -> None:
    assert set(sandbox.isolation) == {"network", "files", "processes", "signals", "limits", "environment"}
    assert sandbox.isolation["limits"] == "1 s wall clock, 256 MiB memory, files up to 1 MiB"
    assert set(sandbox.layers) >= {"namespaces", "landlock", "seccomp"}
