"""The lmodp command line: tables, --json, --plot, exit status 2 on bad input, lazy finetune."""
import json
import subprocess
import sys

import pytest

from lmodp_core.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_optimize_table_and_json(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LMODP_CACHE_DIR", str(tmp_path))
    argv = ["optimize", "--epsilon", "1", "--delta", "1e-5", "--steps", "1", "--geometry", "scalar",
            "--families", "gaussian,laplace"]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    header = next(line for line in out.splitlines() if line.startswith("family"))
    assert "vs gaussian" in header and "sound epsilon" in header
    assert "best: laplace" in out
    status, out, _ = run(capsys, *argv, "--json")
    data = json.loads(out)
    assert status == 0 and data["family"] == "laplace" and data["epsilon"] <= 1.0


def test_optimize_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "density.png"
    status, _, _ = run(capsys, "optimize", "--epsilon", "2", "--delta", "1e-5", "--steps", "10", "--sample-rate",
                       "0.1", "--families", "gaussian,laplace", "--no-cache", "--plot", str(path))
    assert status == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_account_table_json_and_plot(capsys, tmp_path):
    argv = ["account", "--noise", "gaussian:1.0", "--steps", "1000", "--sample-rate", "0.01", "--delta", "1e-5"]
    status, out, _ = run(capsys, *argv)
    assert status == 0 and "epsilon (sound)" in out
    status, out, _ = run(capsys, *argv, "--json")
    assert status == 0 and 0 < json.loads(out)["epsilon"] < 3
    pytest.importorskip("matplotlib")
    path = tmp_path / "eps.png"
    assert run(capsys, *argv, "--plot", str(path))[0] == 0 and path.stat().st_size > 0


def test_account_reads_noise_from_optimize_json(capsys, tmp_path):
    noise_file = tmp_path / "noise.json"
    noise_file.write_text(json.dumps({"noise": {"family": "laplace", "schema_version": 1, "scale": 2.0}}))
    status, out, _ = run(capsys, "account", "--noise", f"@{noise_file}", "--steps", "3", "--geometry", "l1",
                         "--delta", "1e-6", "--json")
    assert status == 0 and json.loads(out)["noise"]["family"] == "laplace"


def test_audit_published(capsys):
    status, out, _ = run(capsys, "audit", "--published", "--json")
    rows = {row["label"]: row for row in json.loads(out)}
    assert status == 0 and list(rows) == ["0.3", "0.7", "2", "3", "5"]
    assert rows["0.3"]["paper_epsilon"] == pytest.approx(0.2932, abs=1e-4)
    assert all(row["sound_epsilon"] > row["paper_epsilon"] for row in rows.values())


def test_audit_params_table(capsys):
    params = '{"a1": 0.1, "a3": 0.1, "a4": 0.1, "G_k": 1, "G_theta": 0.5, "E_lambda": 5, "U_a": 1, "U_b": 2}'
    status, out, _ = run(capsys, "audit", "--params", params, "--steps", "1", "--sample-rate", "1",
                         "--delta", "1e-5", "--geometry", "scalar", "--method", "rdp")
    assert status == 0 and "paper eps (ref)" in out and "not a guarantee" in out


@pytest.mark.parametrize("argv", [
    ["account", "--noise", "gaussian:-1", "--steps", "10", "--delta", "1e-5"],
    ["account", "--noise", "student:3", "--steps", "10", "--delta", "1e-5"],
    ["account", "--noise", "gaussian:1", "--steps", "10", "--delta", "2"],
    ["optimize", "--epsilon", "-1", "--delta", "1e-5", "--steps", "10", "--no-cache"],
    ["optimize", "--epsilon", "1", "--delta", "1e-5", "--steps", "10", "--families", "cauchy", "--no-cache"],
    ["audit", "--published", "--params", "{}"],
    ["audit", "--params", "{not json", "--steps", "1", "--sample-rate", "1", "--delta", "1e-5"],
])
def test_bad_input_exits_with_status_2(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2 and "error" in err and not out


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["account", "--noise", "gaussian:1"])
    assert exit_info.value.code == 2


def test_finetune_without_torch_exits_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmodp_torch", None)  # the import fails as it does without torch
    status, _, err = run(capsys, "finetune", "--epochs", "1")
    assert status == 2 and "torch" in err


def test_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "lmodp_core", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "optimize" in done.stdout and "finetune" in done.stdout
