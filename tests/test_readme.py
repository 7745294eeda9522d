"""Every ```python block of README.md and docs/*.md runs (the examples are part of the contract).

Sketches that need the reader's own model or data are fenced ```py instead and are not run.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
NEEDS_TORCH = ("lmodp_torch", "import torch")
NEEDS_DP_ACCOUNTING = ("dp_accounting", "lmodp_core.interop")  # the optional `interop` extra


def _blocks():
    for path in DOCS:
        for index, code in enumerate(BLOCK.findall(path.read_text())):
            yield pytest.param(code, id=f"{path.name}-{index}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_documentation_example_runs(code, tmp_path, monkeypatch):
    if any(marker in code for marker in NEEDS_TORCH):
        pytest.importorskip("torch")
    if any(marker in code for marker in NEEDS_DP_ACCOUNTING):
        pytest.importorskip("dp_accounting")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<doc example>", "exec"), {"__name__": "__doc_example__"})
