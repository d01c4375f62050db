"""`gtv sweep SPEC.toml` and `gtv sweep status STORE`: runs, JSON, one-line errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gtv.validation.cli import main
from gtv.validation.sweep import load_spec

DOCS = Path(__file__).resolve().parents[3] / "docs" / "sweeps.md"
SPEC = """model = "linear"
seed = 2
record = ["gap_mass", "var_dhat"]
[fixed]
n_models = 4
n_samples = 50
n_space = 3
n_time = 3
[axes]
P = [8, 16]
"""


def test_run_status_and_json(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    code = main(["sweep", str(spec), "--executor", "serial", "--no-progress",
                 "--json", str(tmp_path / "run.json")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "2 tasks, ran 2, skipped 0" in out
    assert (tmp_path / "s.zarr").is_dir()  # default store: next to the spec
    assert json.loads((tmp_path / "run.json").read_text())["ran"] == 2
    assert main(["sweep", "status", str(tmp_path / "s.zarr"), "--verify",
                 "--json", str(tmp_path / "st.json")]) == 0  # fmt: skip
    st = json.loads((tmp_path / "st.json").read_text())
    assert (st["done"], st["failed"], st["pending"], st["corrupt"]) == (2, 0, 0, [])
    assert st["density"] == "transport"  # the linear class's default
    assert main(["sweep", str(spec), "--executor", "serial", "--no-progress"]) == 0
    assert "ran 0, skipped 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "text", "match"),
    [
        (["{spec}"], SPEC.replace("n_models", "n_modls"), r"unknown key\(s\) \['n_modls'\]"),
        (["{spec}"], SPEC.replace("[8, 16]", "[]"), "axes.P is empty"),
        (["{spec}"], SPEC.replace('"linear"', '"mlp"'), "model must be one of"),
        (["{spec}"], SPEC.replace("[8, 16]", "[8, -16]"), "P=-16"),
        (["{spec}", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"], SPEC, "not reachable"),
        (["{spec}", "--cluster", "remote"], SPEC, "cluster must be 'local:N'"),
        (["status", "{dir}"], SPEC, "not a gtv sweep store|cannot be read"),
        (["status"], SPEC, "status needs the store"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, text, match):
    spec = tmp_path / "s.toml"
    spec.write_text(text)
    (tmp_path / "empty").mkdir()
    argv = ["sweep"] + [a.format(spec=spec, dir=tmp_path / "empty") for a in args]
    assert main(argv + ["--no-progress"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(match, err), err


def test_another_spec_needs_force(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    assert main(["sweep", str(spec), "--executor", "serial", "--no-progress"]) == 0
    spec.write_text(SPEC.replace("seed = 2", "seed = 3"))
    assert main(["sweep", str(spec), "--executor", "serial", "--no-progress"]) == 1
    assert "another spec" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--executor", "serial", "--no-progress", "--force"]) == 0


def test_help_explains_every_option_with_its_default():
    proc = subprocess.run([sys.executable, "-m", "gtv.validation.cli", "sweep", "--help"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0
    for opt in ("--store", "--executor", "--workers", "--cluster", "--scheduler", "--timeout",
                "--force", "--verify", "--json", "--no-progress"):  # fmt: skip
        assert opt in proc.stdout
    assert "(default: processes)" in proc.stdout and "(default: 10.0)" in proc.stdout


def test_the_spec_in_the_docs_is_valid(tmp_path):
    block = re.search(r"```toml\n(.*?)```", DOCS.read_text(), re.S).group(1)
    (tmp_path / "doc.toml").write_text(block)
    spec = load_spec(tmp_path / "doc.toml")
    assert spec.shape == (3, 5, 4) and spec.axes["P"] == (16, 64, 256, 1024, 4096)
