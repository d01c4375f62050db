"""Interrupting a real child process after its first checkpoint (the resume tests)."""

import subprocess
import sys
import time
from pathlib import Path


def interrupt_after_checkpoint(code: str, path: Path, sig: int, timeout: float = 120) -> int:
    """Run ``python -c code path`` and send ``sig`` once ``path`` (its checkpoint) exists.

    Returns the child's exit code (non-zero when the signal interrupted it).
    """
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)])
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return proc.returncode
