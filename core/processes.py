"""Worker processes that never outlive the process that started them.

A worker pool's processes are children of the main process; when that is killed (kill -9), the
pool cannot shut them down, and each would finish its work (and hold its memory) for minutes.
`die_with_parent`, called at the start of the worker's work, arms two guards: on Linux the
kernel sends the worker SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), and everywhere a
daemon thread checks the parent once a second and exits the worker when it is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 1.0
_armed_for: int | None = None


def _parent_alive(parent_pid: int, first_ppid: int) -> bool:
    if first_ppid == parent_pid:  # a direct child: its parent changes when the parent dies
        return os.getppid() == parent_pid
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(parent_pid: int, first_ppid: int) -> None:
    while _parent_alive(parent_pid, first_ppid):
        time.sleep(POLL_SECONDS)
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when process `parent_pid` dies (see the module doc).

    Does nothing in `parent_pid` itself (work done in-process) and when already armed.
    """
    global _armed_for
    if os.getpid() == parent_pid or _armed_for == parent_pid:
        return
    _armed_for = parent_pid
    first_ppid = os.getppid()
    if sys.platform.startswith("linux") and first_ppid == parent_pid:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher thread still guards
    if not _parent_alive(parent_pid, first_ppid):  # died before the guards were armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid, first_ppid), daemon=True).start()
