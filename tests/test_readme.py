"""Every ```python block of README.md and docs/*.md runs and prints what the page says it prints.

A page shows the output of a block in one of two ways, both compared with doctest's rules (ELLIPSIS: ``...``
matches anything; NORMALIZE_WHITESPACE: runs of spaces and line breaks compare equal):

- ``#>`` lines: each line that a block prints is written after the statement that prints it, as a comment
  starting with ``#>`` (so the block still runs when pasted). A block that prints must show all of its output.
- a doctest session: a block whose first line starts with ``>>>`` runs as a doctest.

Sketches that need the reader's own model or data are fenced ```py instead and are not run.
"""

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
OUTPUT = re.compile(r"^\s*#>(?: |$)(.*)$", re.MULTILINE)
NEEDS_TORCH = ("lmodp_torch", "import torch")
NEEDS_DP_ACCOUNTING = ("dp_accounting", "lmodp_core.interop")  # the optional `interop` extra
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _blocks():
    for path in DOCS:
        for index, code in enumerate(BLOCK.findall(path.read_text())):
            yield pytest.param(code, id=f"{path.name}-{index}")


def _output_mismatch(code: str, printed: str) -> str | None:
    """None when ``printed`` is what the ``#>`` lines of ``code`` document, else a report of both."""
    documented = "".join(f"{line}\n" for line in OUTPUT.findall(code))
    if doctest.OutputChecker().check_output(documented, printed, FLAGS):
        return None
    return f"the block printed:\n{printed}\nbut its #> lines document:\n{documented}"


def _doctest_failures(code: str, name: str) -> str | None:
    """None when the doctest session ``code`` passes, else doctest's report."""
    test = doctest.DocTestParser().get_doctest(code, {"__name__": "__doc_example__"}, name, None, 0)
    report = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=report.append)
    return "".join(report) if runner.failures else None


@pytest.mark.parametrize("code", list(_blocks()))
def test_documentation_example_prints_what_it_documents(code, request, tmp_path, monkeypatch, capsys):
    if any(marker in code for marker in NEEDS_TORCH):
        pytest.importorskip("torch")
    if any(marker in code for marker in NEEDS_DP_ACCOUNTING):
        pytest.importorskip("dp_accounting")
    monkeypatch.chdir(tmp_path)
    if code.lstrip().startswith(">>>"):
        failures = _doctest_failures(code, request.node.callspec.id)
        assert failures is None, failures
        return
    capsys.readouterr()
    exec(compile(code, "<doc example>", "exec"), {"__name__": "__doc_example__"})
    mismatch = _output_mismatch(code, capsys.readouterr().out)
    assert mismatch is None, mismatch


def test_a_changed_number_or_missing_output_fails():
    code = (
        'print(f"epsilon {2.0043:.4f}")\n#> epsilon 2.0043\nprint([0.04410958, 0.1342425])\n#> [0.0441... 0.1342...]\n'
    )
    assert _output_mismatch(code, "epsilon 2.0043\n[0.04410958, 0.1342425]\n") is None
    assert _output_mismatch(code, "epsilon 2.0044\n[0.04410958, 0.1342425]\n") is not None
    assert _output_mismatch(code, "epsilon 2.0043\n[0.04510958, 0.1342425]\n") is not None
    assert _output_mismatch('print("undocumented")\n', "undocumented\n") is not None
    assert _doctest_failures(">>> round(2.00428, 4)\n2.0043\n", "session") is None
    assert _doctest_failures(">>> round(2.00438, 4)\n2.0043\n", "session") is not None
