"""The ``gtv`` console script's fast exit (gtv.validation.cli.run): run as processes.

After :func:`main` the script runs the :mod:`atexit` handlers and ends with ``os._exit``; the
checks are that nothing a user relies on at exit is lost: the exit status, everything written to
stdout and stderr (also through a pipe), the exit handlers registered during the run, and a
non-daemon thread still working (then the normal shutdown waits for it).
"""

import subprocess
import sys

RUN = "import sys, gtv.validation.cli as c; sys.argv = ['gtv'] + sys.argv[1:]; "


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN + code, *args], capture_output=True, text=True, timeout=300
    )


def test_status_and_piped_output_survive_the_fast_exit(tmp_path):
    ok = _run("c.run()", "env")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().splitlines()[-1].startswith("numba cache dir")  # the last line
    f = tmp_path / "a-file"
    f.write_text("not a directory")
    bad = _run("c.run()", "figure", "1", "--out", str(f), "--grid", "5", "--no-progress")
    assert bad.returncode == 1 and bad.stderr.startswith("gtv: error:")
    usage = _run("c.run()", "figure", "7")  # argparse: status 2, as before
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_exit_handlers_run_and_threads_are_waited_for():
    code = "import atexit; atexit.register(lambda: print('handler ran', flush=True)); c.run()"
    proc = _run(code, "env")
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("handler ran")
    code = (
        "import threading, time\n"
        "def work():\n"
        "    time.sleep(1.0)\n"
        "    print('thread finished', flush=True)\n"
        "threading.Thread(target=work).start()\n"
        "c.run()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", RUN + code, "env"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "thread finished" in proc.stdout
