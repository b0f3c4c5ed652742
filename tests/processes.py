"""Helpers about operating-system processes, for tests of replica liveness."""

from __future__ import annotations

import socket
import subprocess
import sys


def ended_pid() -> int:
    """The pid of a process that has ended and been reaped: no process has it now."""
    ended = subprocess.run(  # this interpreter, fixed arguments
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True
    )
    return int(ended.stdout)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
