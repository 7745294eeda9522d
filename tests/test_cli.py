"""The lmodp command line: tables, --json, --plot, and its contract with the shell (docs/cli.md).

Exit 0 ok, 1 internal error (one line), 2 bad input (one line, before any computation), 130 Ctrl-C, 141 stdout
closed early. Most cases call ``main`` in-process (milliseconds); the process-level behaviour (signals, pipes,
``python -m``) runs the CLI as a subprocess with this checkout's code on PYTHONPATH.
"""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmodp_core import LMO, Gaussian, L2Ball, Poisson, Scalar, auditing, cli
from lmodp_core.accountant import Accountant
from lmodp_core.cli import commands, formatting, main

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"a1": 0.1, "a3": 0.1, "a4": 0.1, "G_k": 1, "G_theta": 0.5, "E_lambda": 5, "U_a": 1, "U_b": 2}
ACCOUNT = ["account", "--noise", "gaussian:1.0", "--steps", "1000", "--sample-rate", "0.01", "--delta", "1e-5"]


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _default_ctrl_c():
    """In the child: Ctrl-C at its default even when pytest itself runs with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_process(*argv, **options):
    """``python -m lmodp_core ARGV`` with this checkout first on the path and Ctrl-C at its default."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, "-m", "lmodp_core", *argv],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_ctrl_c,
        **options,
    )  # noqa: PLW1509 - pytest starts no threads here


def strict_json(text):
    def reject(constant):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


# ---- tables, JSON, plots ---------------------------------------------------------------------------------
def test_optimize_table_fits_100_columns_and_json(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LMODP_CACHE_DIR", str(tmp_path))
    argv = [
        "optimize",
        "--epsilon",
        "1",
        "--delta",
        "1e-5",
        "--steps",
        "1",
        "--geometry",
        "scalar",
        "--families",
        "gaussian,laplace",
    ]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    header = next(line for line in out.splitlines() if line.startswith("family"))
    assert "vs gaussian" in header and "sound epsilon" in header
    assert "best: laplace" in out and "laplace: Laplace(scale=" in out  # full parameters under the table
    assert max(len(line) for line in out.splitlines()) <= 100
    status, out, _ = run(capsys, *argv, "--json")
    data = strict_json(out)
    assert status == 0 and data["family"] == "laplace" and data["epsilon"] <= 1.0


def test_a_many_parameter_noise_gets_a_short_label():
    lmo = LMO(0.1, 0.2, 0.8, 1.0, 0.5, 5.0, 1.0, 2.0, scale=2.0107742691753954)
    assert formatting._short_label(lmo) == "scale=2.01077 (+8 shape)"
    assert formatting._short_label(Gaussian(1.4151588085644369)) == "sigma=1.41516"


def test_optimize_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "density.png"
    status, _, _ = run(
        capsys,
        "optimize",
        "--epsilon",
        "2",
        "--delta",
        "1e-5",
        "--steps",
        "10",
        "--sample-rate",
        "0.1",
        "--families",
        "gaussian,laplace",
        "--no-cache",
        "--plot",
        str(path),
    )
    assert status == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_account_table_and_strict_json(capsys):
    status, out, _ = run(capsys, *ACCOUNT)
    assert status == 0 and "epsilon (sound)" in out and max(map(len, out.splitlines())) <= 100
    status, out, _ = run(capsys, *ACCOUNT, "--json")
    assert status == 0 and 0 < strict_json(out)["epsilon"] < 3


def test_json_writes_infinity_as_a_string_and_nan_as_null():
    text = formatting._json(
        {
            "epsilon": math.inf,
            "order": math.nan,
            "lower": -math.inf,
            "rows": [1.5, (math.inf,)],
            "numpy": [np.float32("nan"), np.int64(3), np.float64("inf")],
        }
    )
    assert strict_json(text) == {
        "epsilon": "inf",
        "order": None,
        "lower": "-inf",
        "rows": [1.5, ["inf"]],
        "numpy": [None, 3, "inf"],
    }


def test_account_plot_draws_each_methods_own_curve(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from lmodp_core import plotting

    drawn = {}
    monkeypatch.setattr(
        plotting,
        "_save",
        lambda figure, plt, path: drawn.update(
            {line.get_label(): line.get_ydata() for line in figure.axes[0].get_lines()}
        ),
    )
    accountant = Accountant(Gaussian(1.0), L2Ball(1.0), Poisson(0.01)).step(300)
    report = accountant.report(1e-5)
    plotting.plot_epsilon_over_steps(accountant, report, tmp_path / "eps.png")
    rdp, pld = drawn["RDP (sound upper bound)"], drawn["PLD (sound upper bound)"]
    assert rdp[-1] == pytest.approx(report.rdp_epsilon) and pld[-1] == pytest.approx(report.pld_epsilon)
    assert any(label.startswith("reported at T=300") for label in drawn)
    path = tmp_path / "eps.png"
    monkeypatch.undo()
    assert run(capsys, *ACCOUNT, "--plot", str(path))[0] == 0 and path.read_bytes()[:4] == b"\x89PNG"


def test_account_reads_noise_from_optimize_json(capsys, tmp_path):
    noise_file = tmp_path / "noise.json"
    noise_file.write_text(json.dumps({"noise": {"family": "laplace", "schema_version": 1, "scale": 2.0}}))
    status, out, _ = run(
        capsys, "account", "--noise", f"@{noise_file}", "--steps", "3", "--geometry", "l1", "--delta", "1e-6", "--json"
    )
    assert status == 0 and json.loads(out)["noise"]["family"] == "laplace"


# ---- audit ------------------------------------------------------------------------------------------------
def test_audit_published(capsys):
    status, out, err = run(capsys, "audit", "--published", "--json")
    rows = {row["label"]: row for row in strict_json(out)}
    assert status == 0 and list(rows) == ["0.3", "0.7", "2", "3", "5"]
    assert rows["0.3"]["paper_epsilon"] == pytest.approx(0.2932, abs=1e-4)
    assert all(row["sound_epsilon"] > row["paper_epsilon"] for row in rows.values())
    assert err == ""  # no order-grid note: set 5's best order is 1.1, but orders below it change 4417 by < 1%


def test_audit_published_honours_the_setting_options(capsys, monkeypatch):
    calls = []

    def fake_audit(noise, steps, sample_rate, delta, geometry, *, method, label):
        calls.append((steps, sample_rate, delta, geometry, method))
        return auditing.AuditResult(
            noise.to_paper(),
            steps,
            sample_rate,
            delta,
            geometry,
            0.3,
            128.0,
            1.3,
            2.0,
            0.1,
            1.0,
            1.0,
            "pld",
            0.5,
            label,
        )  # pld: no order-grid check

    monkeypatch.setattr(commands, "audit", fake_audit)
    status, out, _ = run(
        capsys,
        "audit",
        "--published",
        "--steps",
        "7",
        "--sample-rate",
        "0.5",
        "--delta",
        "1e-6",
        "--geometry",
        "scalar",
        "--clip",
        "2",
        "--method",
        "rdp",
    )
    assert status == 0 and calls == [(7, 0.5, 1e-6, Scalar(2.0), "rdp")] * 5
    assert "steps=7, sample_rate=0.5, delta=1e-06, geometry=Scalar(sensitivity=2.0)" in " ".join(out.split())
    calls.clear()
    assert run(capsys, "audit", "--published", "--clip", "3")[0] == 0
    assert calls[0][:4] == (198, 2048 / 67349, 1e-10, L2Ball(3.0))  # the paper's setting, only the clip replaced


def test_audit_params_from_a_file_and_the_table(capsys, tmp_path):
    path = tmp_path / "lmo.json"
    path.write_text(json.dumps(PARAMS))
    setting = ("--steps", "1", "--sample-rate", "1", "--delta", "1e-5", "--geometry", "scalar", "--method", "rdp")
    status, out, _ = run(
        capsys,
        "audit",
        "--params",
        f"@{path}",
        *setting,
    )
    lines = out.splitlines()
    assert status == 0 and max(map(len, lines)) <= 100
    assert "on valid" in lines[1] and "orders (ref)" in lines[2]  # a column of epsilons, named as such
    assert "not a guarantee" in out and "both paper columns" not in out
    inline = run(
        capsys,
        "audit",
        "--params",
        json.dumps(PARAMS),
        *setting,
    )
    assert inline[1] == out


# ---- the contract: exit 2 and one line ------------------------------------------------------------------
BAD_INPUT = {  # class of bad input -> (argv, what the one line must name)
    "not a number": (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "abc"], "--delta"),
    "NaN": (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "nan"], "--delta"),
    "negative": (["optimize", "--epsilon", "-1", "--delta", "1e-5", "--steps", "10", "--no-cache"], "--epsilon"),
    "delta out of range": (["audit", "--published", "--delta", "1.5"], "--delta"),
    "bad noise string": (["account", "--noise", "lmo:5", "--steps", "10", "--delta", "1e-5"], "--noise"),
    "bad noise JSON": (["account", "--noise", '{"family": "gaussian"}', "--steps", "10", "--delta", "1e-5"], "sigma"),
    "missing @file": (
        ["audit", "--params", "@/nonexistent/lmo.json", "--steps", "1", "--sample-rate", "1", "--delta", "1e-5"],
        "--params",
    ),
    "bad --plot path": (
        ["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "1e-5", "--plot", "/nonexistent/eps.png"],
        "/nonexistent",
    ),
    "missing option": (["account", "--noise", "gaussian:1", "--delta", "1e-5"], "--steps"),
}
MORE_BAD_INPUT = [
    (["account", "--noise", "gaussian:-1", "--steps", "10", "--delta", "1e-5"], "sigma"),
    (["account", "--noise", "gaussian:x", "--steps", "10", "--delta", "1e-5"], "--noise"),
    (["account", "--noise", "student:3", "--steps", "10", "--delta", "1e-5"], "--noise"),
    (["account", "--noise", "{not json", "--steps", "10", "--delta", "1e-5"], "invalid JSON"),
    (["account", "--noise", "[1, 2]", "--steps", "10", "--delta", "1e-5"], "--noise"),
    (
        ["account", "--noise", '{"family": "gaussian", "sigma": 1, "mu": 2}', "--steps", "10", "--delta", "1e-5"],
        "--noise",
    ),
    (["account", "--noise", '{"family": "cauchy"}', "--steps", "10", "--delta", "1e-5"], "cauchy"),
    (["account", "--noise", "@/nonexistent.json", "--steps", "10", "--delta", "1e-5"], "cannot read"),
    (["account", "--noise", "gaussian:1", "--steps", "0", "--delta", "1e-5"], "--steps"),
    (["account", "--noise", "gaussian:1", "--steps", "1.5", "--delta", "1e-5"], "--steps"),
    (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "2"], "--delta"),
    (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "inf"], "--delta"),
    (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "1e-5", "--sample-rate", "0"], "--sample-rate"),
    (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "1e-5", "--clip", "-1"], "--clip"),
    (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "1e-5", "--geometry", "l3"], "--geometry"),
    (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "1e-5", "--plot", "/tmp"], "folder"),
    (["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "1e-5", "--plot", "eps.xyz"], "format"),
    (["optimize", "--epsilon", "nan", "--delta", "1e-5", "--steps", "10"], "--epsilon"),
    (["optimize", "--epsilon", "1", "--delta", "1e-5", "--steps", "10", "--families", "cauchy"], "--families"),
    (["optimize", "--epsilon", "1", "--delta", "1e-5", "--steps", "10", "--jobs", "0"], "--jobs"),
    (["optimize", "--epsilon", "1", "--delta", "1e-5", "--steps", "10", "--gamma", "0"], "--gamma"),
    (["optimize", "--epsilon", "1", "--delta", "1e-5", "--steps", "10", "--seed", "-3"], "--seed"),
    (["audit", "--published", "--params", "{}"], "exactly one"),
    (["audit"], "exactly one"),
    (["audit", "--params", "5", "--steps", "1", "--sample-rate", "1", "--delta", "1e-5"], "--params"),
    (["audit", "--params", "{not json", "--steps", "1", "--sample-rate", "1", "--delta", "1e-5"], "--params"),
    (["audit", "--params", '{"a1": 1}', "--steps", "1", "--sample-rate", "1", "--delta", "1e-5"], "missing"),
    (["audit", "--params", json.dumps(PARAMS), "--steps", "1"], "--sample-rate"),
    (["audit", "--published", "--steps", "0"], "--steps"),
    (["audit", "--published", "--sample-rate", "2"], "--sample-rate"),
    (["audit", "--published", "--clip", "nan"], "--clip"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
]


@pytest.mark.parametrize("argv, named", [*BAD_INPUT.values(), *MORE_BAD_INPUT])
def test_bad_input_exits_2_with_one_line_before_any_computation(capsys, monkeypatch, argv, named):
    def no_computation(*args, **kwargs):
        raise AssertionError("bad input must be rejected before any computation")

    monkeypatch.setattr(commands, "Accountant", no_computation)
    monkeypatch.setattr(commands, "audit", no_computation)
    monkeypatch.setattr(commands, "optimize_noise", no_computation)
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == "" and err.count("\n") == 1 and ": error: " in err and named in err


def test_every_bad_input_class_exits_2_with_one_line_outside_pytest(tmp_path):
    """All classes in one fresh interpreter (one import, not nine), stderr a plain stream, no pytest capture."""
    script = (
        "import io, json, sys\n"
        "from lmodp_core.cli import main\n"
        "results = {}\n"
        "for name, argv in json.loads(sys.argv[1]).items():\n"
        "    sys.stderr = io.StringIO()\n"
        "    results[name] = (main(argv), sys.stderr.getvalue())\n"
        "sys.stderr = sys.__stderr__\n"
        "print(json.dumps(results))\n"
    )
    cases = json.dumps({name: argv for name, (argv, _) in BAD_INPUT.items()})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, cases],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for name, (status, err) in json.loads(done.stdout).items():
        assert status == 2 and err.count("\n") == 1 and BAD_INPUT[name][1] in err, (name, err)


def test_plot_without_matplotlib_is_refused_before_the_computation(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the import fails as it does without matplotlib
    monkeypatch.setattr(commands, "Accountant", None)  # the computation would fail with an internal error
    status, out, err = run(capsys, *ACCOUNT, "--plot", str(tmp_path / "eps.png"))
    assert status == 2 and out == "" and "need matplotlib" in err and err.count("\n") == 1


def test_an_internal_error_is_one_line_with_a_hint(capsys, monkeypatch):
    def broken(args):
        raise KeyError("accountant")

    monkeypatch.setitem(cli._COMMANDS, "account", broken)
    status, out, err = run(capsys, *ACCOUNT)
    assert status == 1 and out == "" and err.count("\n") == 1
    assert "internal error: KeyError" in err and "LMODP_DEBUG=1" in err
    monkeypatch.setenv("LMODP_DEBUG", "1")
    with pytest.raises(KeyError):
        main(ACCOUNT)


def test_order_grid_note_only_when_more_orders_change_the_answer(capsys):
    status, out, err = run(
        capsys, "account", "--noise", "gaussian:1000", "--steps", "1", "--delta", "1e-5", "--method", "rdp"
    )  # best order ~ 4800, past the grid's 1024: 0.0040 -> 0.0023
    assert status == 0 and "epsilon (sound)" in out and err.count("\n") == 1
    assert (
        err.startswith(
            "lmodp account: note: a Renyi order outside the default grid [1.1, 1024] gives a smaller "
            "sound RDP epsilon: 0.00233"
        )
        and ".py" not in err
        and "Warning" not in err
    )
    status, out, err = run(
        capsys, "account", "--noise", "gaussian:1", "--steps", "10", "--delta", "1e-5", "--method", "rdp"
    )  # best order inside the grid
    assert status == 0 and err == ""


# ---- the contract at the process level ---------------------------------------------------------------------
def test_stdout_closed_early_exits_quietly():  # also the `python -m lmodp_core` entry point
    process = cli_process(*ACCOUNT[:4], "10", "--delta", "1e-5", "--json")
    process.stdout.close()  # like `| head` having exited
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141 and err == ""


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    script = (
        "import os, signal, sys, threading\n"
        "from lmodp_core.cli import main\n"
        "threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "sys.exit(main(['optimize', '--epsilon', '1', '--delta', '1e-5', '--steps', '300', '--sample-rate', "
        "'0.02', '--no-cache', '--jobs', '1']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LMODP_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_default_ctrl_c,
    )
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "lmodp optimize: interrupted\n")


def test_help_states_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code == 0 and "finetune" in out and "2 bad input, 130 interrupted" in out


def test_finetune_without_torch_exits_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmodp_torch", None)  # the import fails as it does without torch
    status, _, err = run(capsys, "finetune", "--epochs", "1")
    assert status == 2 and "torch" in err and err.count("\n") == 1


def test_make_says_what_it_installs_before_the_quiet_install():
    recipe = (ROOT / "Makefile").read_text().split("$(STAMP): pyproject.toml\n", 1)[1].split("\n\n", 1)[0]
    before_install = recipe[: recipe.index("pip install")]
    assert before_install.lstrip().startswith("@echo") and "few minutes" in before_install


def test_long_parameter_lists_are_counted_not_printed():
    from lmodp_core import PiecewiseNoise

    line = formatting._parameters(PiecewiseNoise.normalised(0.1, [1.0] * 20, tail_ratio=0.5))
    assert "values=[20 values: see --json]" in line and len(line) < 100
    assert formatting._parameters(Gaussian(2.0)) == "Gaussian(sigma=2.0)"
