"""The ``gtv`` command line: help, env, figure 1, and one-line errors without tracebacks."""

import subprocess
import sys

import numpy as np
import pytest

from gtv.validation.cli import main
from gtv.validation.figures.figure1 import Figure1Result


def _one_line_error(err):
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gtv: error:"), err
    assert "Traceback" not in err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "env" in out and "figure" in out


def test_figure_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["figure", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo line wrapping
    for option in ("--out", "--grid", "--formats", "--no-progress"):
        assert option in text, option
    for default in ("(default: gtv-output)", "(default: 401)", "(default: png,pdf)"):
        assert default in text, default


def test_env_prints_threading_layer(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "numba threading layer" in out
    assert "numba threads" in out and "numpy" in out


def test_figure_1_writes_data_and_images(tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["figure", "1", "--out", str(out), "--grid", "21", "--no-progress"]) == 0
    for name in ("figure1.png", "figure1.pdf", "figure1.npz"):
        assert (out / name).stat().st_size > 0, name
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(
        str(out / n) for n in ("figure1.npz", "figure1.png", "figure1.pdf")
    )
    res = Figure1Result.load(out / "figure1.npz")
    assert res.frac.shape[-2:] == (21, 21) and res.config["n_grid"] == 21
    assert np.all((res.frac >= 0) & (res.frac <= 1))


def test_figure_formats_option(tmp_path):
    out = tmp_path / "png-only"
    assert (
        main(["figure", "1", "--out", str(out), "--grid", "5", "--formats", "png", "--no-progress"])
        == 0
    )
    assert (out / "figure1.png").exists() and not (out / "figure1.pdf").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["figure", "7"],
        ["figure", "1", "--grid", "1"],
        ["figure", "1", "--grid", "many"],
        ["figure", "1", "--formats", "gif"],
        ["nonsense"],
        [],
    ],
    ids=["figure-7", "grid-1", "grid-text", "formats-gif", "unknown-command", "no-command"],
)
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    _one_line_error(capsys.readouterr().err)


def test_runtime_error_is_one_line(tmp_path, capsys):
    """--out pointing to an existing regular file: non-zero exit status, one error line."""
    f = tmp_path / "a-file"
    f.write_text("not a directory")
    status = main(["figure", "1", "--out", str(f), "--grid", "5", "--no-progress"])
    assert status != 0
    _one_line_error(capsys.readouterr().err)
    assert f.read_text() == "not a directory"


def test_module_entry_point_has_no_traceback():
    """The installed entry point, run as a process: a bad figure number is exit 2, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "gtv.validation.cli", "figure", "7"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    _one_line_error(proc.stderr)


def test_ctrl_c_inside_a_compiled_kernel_is_an_interrupt(monkeypatch, capsys):
    """numba re-raises a KeyboardInterrupt from inside a kernel as a SystemError caused by it:
    the CLI reports it as an interrupt (exit 130, one line), not as a traceback."""
    import gtv.validation.cli as cli

    def interrupted(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("<numba function> returned a result with an exception set") from exc

    monkeypatch.setattr(cli, "_cmd_env", interrupted)
    assert cli.main(["env"]) == 130
    assert capsys.readouterr().err == "gtv: interrupted\n"
