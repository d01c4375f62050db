"""``gtv serial ...``: help with defaults, tables, files, --json, one-line errors."""

import dataclasses
import json
import subprocess
import sys

import pytest

from gtv.validation.cli import main
from gtv.validation.serial.cli import EXPERIMENT_HELP, LEARNED_DEFAULTS
from gtv.validation.serial.experiments import ExperimentResult
from gtv.validation.serial.learned_experiment import LearnedConfig, LearnedResult


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_serial_help_lists_every_experiment(capsys):
    text = _help(["serial", "--help"], capsys)
    for name in (*EXPERIMENT_HELP, "learned"):
        assert name in text


def test_every_option_shows_its_default(capsys):
    text = _help(["serial", "fixed-total", "--help"], capsys)
    for default in (
        "(default: authors)", "(default: gtv-output)", "(default: None)", "(default: png,pdf)",
        "(default: 0.04)", "(default: [2, 3, 6, 12, 24, 48, 100])",
    ):  # fmt: skip
        assert default in text, default
    text = _help(["serial", "learned", "--help"], capsys)
    for default in ("(default: torus)", "(default: 16)", "(default: kernel)", "(default: 1e-06)"):
        assert default in text, default


def test_learned_defaults_are_the_configs():
    fields = {f.name: f.default for f in dataclasses.fields(LearnedConfig)}
    for k, v in LEARNED_DEFAULTS.items():
        assert fields[k] == v, k
    assert set(fields) - set(LEARNED_DEFAULTS) == {"total"}


def test_fig3_writes_tables_files_and_json(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["serial", "fig3", "--h", "0.1", "--steps", "2", "4", "--grid", "both"]
    argv += ["--out", str(out), "--json", str(tmp_path / "t.json"), "--formats", "png"]
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert (
        "fig3 on the authors grid (11 x 11" in printed
        and "fig3 on the torus grid (10 x 10" in printed
    )
    payload = json.loads((tmp_path / "t.json").read_text())
    assert payload["experiment"] == "fig3" and [t["grid"] for t in payload["tables"]] == [
        "authors",
        "torus",
    ]
    saved = ExperimentResult.load(out / "serial_fig3_torus.npz")
    assert payload["tables"][1]["rows"] == saved.rows
    assert [r["T"] for r in saved.rows] == [2, 4]
    for name in ("serial_fig3_authors.png", "serial_fig3_authors_S1.png", "serial_fig3_torus.png"):
        assert (out / name).stat().st_size > 0
        assert str(out / name) in printed


def test_learned_runs_small(tmp_path, capsys):
    argv = ["serial", "learned", "--h", "0.125", "--steps", "2", "--families", "fade"]
    argv += ["--family-T", "2", "--models", "2", "--pairs-per-step", "60", "--kernel-pairs", "30"]
    argv += ["--n-space", "3", "--stationary-iters", "5", "--boot", "20", "--no-progress"]
    argv += ["--out", str(tmp_path), "--json", str(tmp_path / "l.json"), "--formats", "png"]
    assert main(argv) == 0
    assert "noise families at T = 2" in capsys.readouterr().out
    res = LearnedResult.load(tmp_path / "serial_learned_torus_kernel.npz")
    assert res.config.n_models == 2 and res.config.families == ("fade",)
    assert json.loads((tmp_path / "l.json").read_text())["tables"][0]["rows"] == res.rows


@pytest.mark.parametrize(
    "argv",
    [
        ["serial"],
        ["serial", "fig7"],
        ["serial", "fig3", "--steps", "0"],
        ["serial", "fig2", "--h", "0.3"],
        ["serial", "fig2", "--grid", "hex"],
        ["serial", "learned", "--models", "1"],
        ["serial", "learned", "--ridge", "-1"],
        ["serial", "learned", "--denoisers", "oracle"],
    ],
    ids=["none", "fig7", "steps-0", "h-not-1/m", "grid", "models-1", "ridge", "denoiser"],
)
def test_bad_arguments_print_one_line(argv):
    proc = subprocess.run(
        [sys.executable, "-m", "gtv.validation.cli", *argv], capture_output=True, text=True
    )
    assert proc.returncode in (1, 2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtv: error:"), proc.stderr
