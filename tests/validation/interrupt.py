"""Interrupting a real child process after its first checkpoint (the resume tests)."""

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

#: Prepended to a child's code by ``pause=True``: the child sleeps right after writing its first
#: checkpoint, so the signal lands at a known point however loaded the machine is.
PAUSE_AFTER_FIRST_CHECKPOINT = """
import time as _time
from gtv.validation.checkpoint import TaskCheckpoint as _TaskCheckpoint
_mark_done = _TaskCheckpoint.mark_done


def _mark_done_then_pause(self, task):
    _mark_done(self, task)
    _time.sleep(120)  # interrupted here, after the first checkpoint


_TaskCheckpoint.mark_done = _mark_done_then_pause
"""


def interrupt_after_checkpoint(
    code: str,
    path: Path,
    sig: int,
    timeout: float = 120,
    *,
    args: Sequence[str] | None = None,
    pause: bool = False,
    delay: float = 0.0,
) -> int:
    """Run ``python -c code *args`` (default args: ``path``) and send ``sig`` once ``path`` (its
    checkpoint) exists, ``delay`` seconds later; with ``pause`` the child first sleeps after its
    first checkpoint (:data:`PAUSE_AFTER_FIRST_CHECKPOINT`).

    Returns the child's exit code (non-zero when the signal interrupted it).
    """
    prelude = PAUSE_AFTER_FIRST_CHECKPOINT if pause else ""
    argv = [str(path)] if args is None else list(args)
    proc = subprocess.Popen([sys.executable, "-c", prelude + code, *argv])
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return proc.returncode
