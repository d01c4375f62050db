"""Every ``gtv`` subcommand with absurd sizes: one error line, no traceback, fast (issue 14).

The cases are generated from the parser: for every leaf command and every size option (integer
options, and the float options that set a size: ``--taus``, ``--h``, ``--query-x``), the option is
set to an absurd value and everything else left at its default. Without the up-front checks a
case either runs the default computation for minutes or hangs; with them it must exit non-zero
with exactly one stderr line starting ``gtv: error:`` within :data:`SECONDS`.

All cases run in ONE child process (imports and numba compilation once) that calls
``gtv.validation.cli.main`` per case with an alarm of :data:`SECONDS`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

import pytest

from gtv.validation.cli import build_parser

SECONDS = 20
ABSURD_INT = "1000000000000"
#: Float options that set a size, with a value implying an absurd amount of work or a NaN table.
ABSURD_FLOAT = {"--taus": "1e12", "--h": "1e-12", "--query-x": "1e200"}
#: Options that are not sizes (a huge value is legitimate or not a size at all).
NOT_SIZES = {"--seed", "--formats"}


def _leaves(parser: argparse.ArgumentParser, prefix: list[str]):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaves(sub, [*prefix, name])
            return
    yield prefix, parser


def _cases() -> list[list[str]]:
    cases = []
    for prefix, parser in _leaves(build_parser(), []):
        if prefix == ["env"]:
            continue
        base = list(prefix)
        if prefix == ["sweep"]:  # needs its spec (the sizes are checked before it is read)
            cases += [[*base, "spec.toml", "--workers", ABSURD_INT]]
            continue
        if prefix == ["figure"]:
            for number, fast in (("1", []), ("2", ["--fast"]), ("3", ["--fast"])):
                opts = {"1": ["--grid"], "2": ["--models", "--samples"]}.get(
                    number, ["--models", "--samples", "--points"]
                )
                cases += [[*base, number, *fast, o, ABSURD_INT] for o in opts]
            continue
        for action in parser._actions:
            opt = action.option_strings[0] if action.option_strings else None
            if opt is None or opt in NOT_SIZES or action.choices is not None:
                continue
            value = ABSURD_FLOAT.get(opt)
            if value is None and action.type is not None:
                try:
                    is_int = isinstance(action.type("100000"), int)
                except (argparse.ArgumentTypeError, ValueError, TypeError):
                    is_int = False
                value = ABSURD_INT if is_int else None
            if value is None:
                continue
            n = action.nargs if isinstance(action.nargs, int) else 1
            cases.append([*base, opt, *([value] * n)])
    return cases


DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, signal, sys, time, traceback
    from gtv.validation.cli import main

    class Alarm(BaseException):
        pass

    def on_alarm(*_):
        raise Alarm()

    signal.signal(signal.SIGALRM, on_alarm)
    cases, out, seconds = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for case in cases:
        has_out = "--out" in case or case[0] == "sweep"  # a sweep writes to --store
        argv = [*case, *([] if has_out else ["--out", out]), "--no-progress"]
        err = io.StringIO()
        t0 = time.perf_counter()
        code, escaped = None, None
        signal.alarm(seconds)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except Alarm:
            escaped = "timeout"
        except BaseException:
            escaped = traceback.format_exc()
        finally:
            signal.alarm(0)
        rec = dict(case=case, code=code, stderr=err.getvalue(), escaped=escaped,
                   seconds=time.perf_counter() - t0)
        print(json.dumps(rec), flush=True)
    """
)


def _run(cases: list[list[str]], tmp_path) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(cases), str(tmp_path / "out"), str(SECONDS)],
        capture_output=True,
        text=True,
        timeout=SECONDS * len(cases) + 120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _named(case: list[str], stderr: str) -> bool:
    """Whether the error names every option of the case (``--n-space`` or ``n_space``)."""
    opts = [c.lstrip("-").replace("-", "_") for c in case if c.startswith("--") and c != "--fast"]
    return all(o in stderr.replace("-", "_") for o in opts)


def _problems(records: list[dict], named: bool = True) -> list[str]:
    """Cases that did not fail fast with one named ``gtv: error:`` line (``named``: the error
    must name every option the case sets)."""
    bad = []
    for r in records:
        lines = r["stderr"].splitlines()
        ok = (
            r["escaped"] is None
            and r["code"] not in (0, None)
            and len(lines) == 1
            and lines[0].startswith("gtv: error:")
            and "Traceback" not in r["stderr"]
            and r["seconds"] < SECONDS
            and (not named or _named(r["case"], r["stderr"]))
        )
        if not ok:
            what = r["escaped"] or r["stderr"]
            bad.append(f"{' '.join(r['case'])}: code {r['code']}, {r['seconds']:.1f} s, {what!r}")
    return bad


def test_cases_cover_every_subcommand():
    cases = _cases()
    commands = {tuple(c[:2]) if c[0] in ("validate", "serial", "memorization") else (c[0],)
                for c in cases}  # fmt: skip
    leaves = {tuple(p) for p, _ in _leaves(build_parser(), []) if p != ["env"]}
    assert commands == leaves
    assert ["validate", "ntk", "--taus", "1e12"] in cases
    assert ["figure", "2", "--fast", "--models", ABSURD_INT] in cases


@pytest.mark.slow
def test_every_subcommand_rejects_absurd_sizes_in_one_line(tmp_path):
    records = _run(_cases(), tmp_path)
    assert len(records) == len(_cases())
    assert _problems(records) == []


def test_audit_cases_fail_fast_in_one_line(tmp_path):
    """The audit's cases (hung, MemoryError traceback, NaN table saved) and an unwritable --out."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        ["figure", "2", "--fast", "--models", "1000000000"],
        ["figure", "2", "--fast", "--samples", ABSURD_INT],
        "validate ntk --taus 1e12 --models 4 --widths 8 --density mc --samples 10".split(),
        ["validate", "ntk", "--query-x", "1e200"],
        ["figure", "1", "--grid", "3", "--out", str(blocker / "sub")],
    ]
    records = _run(cases, tmp_path)
    assert _problems(records, named=False) == []
    assert "--models 1000000000" in records[0]["stderr"]
    assert "--samples" in records[1]["stderr"]
    assert "taus" in records[2]["stderr"] and "gradient steps" in records[2]["stderr"]
    assert "query_x" in records[3]["stderr"]
    assert "--out" in records[4]["stderr"] and "not writable" in records[4]["stderr"]
    assert records[4]["seconds"] < 5  # checked before the computation
