"""Helpers about operating-system processes, for tests of replica liveness."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator


def ended_pid() -> int:
    """The pid of a process that has ended and been reaped: no process has it now."""
    ended = subprocess.run(  # this interpreter, fixed arguments
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True
    )
    return int(ended.stdout)


@contextlib.contextmanager
def running_pid() -> Iterator[int]:
    """The pid of a process that runs until the block ends."""
    with subprocess.Popen(  # this interpreter, fixed arguments
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as process:
        try:
            yield process.pid
        finally:
            process.kill()


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
