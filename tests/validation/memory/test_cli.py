"""``gtv memorization ...``: help with defaults, tables, files, --json, one-line errors."""

import json

import numpy as np
import pytest

from gtv.validation.cli import main
from gtv.validation.memory import TransitionResult


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_every_option_shows_its_default(capsys):
    text = _help(["memorization", "curve", "--help"], capsys)
    for option in (
        "--dataset", "--models", "--K", "--n-models", "--samples", "--eps", "--delta-m",
        "--delta-s", "--ratio", "--flat-tol", "--theory", "--n-mc", "--json", "--seed",
    ):  # fmt: skip
        assert option in text, option
    for default in ("(default: circle)", "(default: 0.01)", "(default: ['exact'])", "(default: 8)"):
        assert default in text, default
    assert "(default: [2, 4, 9, 20, 44, 96, 208, 452, 980, 2125, 4610, 10000])" in text
    for action in ("attractors", "collapse"):
        assert "(default:" in _help(["memorization", action, "--help"], capsys)


def test_curve_writes_tables_files_and_json(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "memorization", "curve", "--K", "3", "30", "--n-models", "2", "--samples", "60",
        "--steps", "10", "--out", str(out), "--json", str(tmp_path / "t.json"), "--no-progress",
        "--formats", "png",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for crit in ("thresholds", "ratio", "attractors"):
        assert f"criterion: {crit}" in printed
    res = TransitionResult.load(out / "memorization_circle_exact.npz")
    assert res.config.Ks == (3, 30) and res.config.n_samples == 60
    assert (out / "memorization_circle.png").stat().st_size > 1000
    payload = json.loads((tmp_path / "t.json").read_text())
    rows = payload[0]["tables"]["thresholds"]
    assert [r["K"] for r in rows] == [3, 30]
    assert np.isclose(rows[0]["memorized"][0], res.fractions[0, :, 0, 0].mean())


def test_attractors_prints_a_table_and_json(tmp_path, capsys):
    argv = [
        "memorization", "attractors", "--K", "4", "--starts", "200", "--out", str(tmp_path),
        "--json", str(tmp_path / "a.json"),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "attractors" in printed and "basin" in printed
    rows = json.loads((tmp_path / "a.json").read_text())["attractors"]
    # Four random points on the circle at eps = 0.01: at most four stable memories.
    assert 1 <= sum(r["stable"] for r in rows) <= 4
    assert abs(sum(r["basin_share"] for r in rows) - 1) < 1e-9


@pytest.mark.parametrize(
    "argv",
    [
        ["memorization", "curve", "--K", "1"],
        ["memorization", "curve", "--K", "9", "3"],
        ["memorization", "curve", "--eps", "3"],
        ["memorization", "curve", "--dataset", "sphere", "--models", "linear"],
        ["memorization", "curve", "--ratio", "0"],
        ["memorization", "curve", "--samples", "1000000000"],
        ["memorization", "attractors", "--dim", "3"],
        ["memorization"],
    ],
)
def test_bad_values_give_one_line_and_nonzero_exit(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        code = main([*argv, "--out", str(tmp_path)] if len(argv) > 1 else argv)
        raise SystemExit(code)
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("gtv") or "error" in err[-1]
