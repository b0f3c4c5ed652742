"""Helpers about operating-system processes, for tests of replica liveness."""

from __future__ import annotations

import subprocess
import sys


def ended_pid() -> int:
    """The pid of a process that has ended and been reaped: no process has it now."""
    ended = subprocess.run(  # this interpreter, fixed arguments
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True
    )
    return int(ended.stdout)
