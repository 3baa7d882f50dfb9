"""Keep SVT-AV1 from turning threads real-time.

Run as root (CI, containers, these machines), SVT-AV1 switches the thread that creates an
encoder to SCHED_FIFO priority 99 and creates its own worker threads at SCHED_FIFO 99.
The calling thread stays real-time after the encoder is gone, and every thread it starts
later inherits that policy: one encode in a web server's worker thread left the server,
the test runner and the browser it drove competing with priority-99 threads that the
kernel lets take 95 % of every core.

Root cause, per thread: SVT-AV1 only asks for real time when the thread may have it
(CAP_SYS_NICE). Capabilities are a per-thread attribute on Linux, so ``no_realtime()``
clears CAP_SYS_NICE from the calling thread's *effective* set (keeping it permitted),
runs the encoder, and raises it again. SVT-AV1's request is then refused, and the threads
it creates inherit the cleared set, so none of them is real-time either (measured: the
payload bytes are identical). As a second line, the thread's scheduling policy is put
back to what it was if anything changed it anyway (a platform where capset is refused).
Other threads of the process are never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

CAP_SYS_NICE = 23
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.capget, libc.capset  # noqa: B018 (present only on Linux)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def _set_nice_effective(on: bool) -> bool:
    """Raise or clear CAP_SYS_NICE in this thread's effective set; False if not possible."""
    if _LIBC is None:
        return False
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _LIBC.capget(ctypes.byref(hdr), data) != 0:
        return False
    bit = 1 << CAP_SYS_NICE
    if on:
        if not data[0].permitted & bit:
            return False
        data[0].effective |= bit
    else:
        data[0].effective &= ~bit
    return _LIBC.capset(ctypes.byref(hdr), data) == 0


def _had_nice() -> bool:
    if _LIBC is None:
        return False
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    return _LIBC.capget(ctypes.byref(hdr), data) == 0 and bool(data[0].effective & (1 << CAP_SYS_NICE))


def thread_policy() -> tuple[int, int]:
    """(policy, priority) of the calling thread; (0, 0) is SCHED_OTHER."""
    if not hasattr(os, "sched_getscheduler"):
        return (0, 0)
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority


@contextlib.contextmanager
def no_realtime() -> Iterator[None]:
    """Run the body so that neither this thread nor any thread it creates becomes real-time."""
    if not hasattr(os, "sched_getscheduler"):
        yield
        return
    before = thread_policy()
    had_nice = _had_nice()
    dropped = had_nice and _set_nice_effective(False)
    try:
        yield
    finally:
        if thread_policy() != before:
            # capset unavailable (or refused): undo the switch itself. Lowering needs no
            # privilege; going back up to a policy the caller had does (we still hold it).
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, before[0], os.sched_param(before[1]))
        if dropped:
            _set_nice_effective(True)
