"""The command line's text output: aligned tables, wrapped prose, noise labels and strict JSON."""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np

from ..noise import Noise

_WIDTH = 100  # every line of a table or of the prose around it fits in this many columns
_LIST_SHOWN = 8  # longer parameter lists (histogram values) are summarised in tables, listed in --json


def _json_safe(value):
    """``value`` with every non-finite float made valid JSON: +-inf as the strings "inf"/"-inf", NaN as null."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _json(data) -> str:
    return json.dumps(_json_safe(data), indent=2, allow_nan=False)


def _format(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:.6g}")
    return "-" if value is None else str(value)


def _table(headers: list[str], rows: list[list]) -> str:
    """Rows as an aligned text table (numbers right-aligned); a header may span lines ("top\\nbottom")."""
    cells = [[_format(v) for v in row] for row in rows]
    header_lines = [h.split("\n") for h in headers]
    height = max(len(lines) for lines in header_lines)
    header_rows = [
        [lines[i - height + len(lines)] if i >= height - len(lines) else "" for lines in header_lines]
        for i in range(height)
    ]
    widths = [
        max([*(len(line) for line in lines), *(len(r[i]) for r in cells)]) for i, lines in enumerate(header_lines)
    ]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()

    return "\n".join([*(line(r) for r in header_rows), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, _WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _short_label(noise: Noise) -> str:
    """The noise's scale for a table cell; its full parameters are listed under the table and in --json."""
    params = {k: v for k, v in noise.to_dict().items() if k not in ("family", "schema_version")}
    if len(params) == 1:
        ((name, value),) = params.items()
        return f"{name}={_format(value)}"
    return f"scale={_format(params.get('scale'))} (+{len(params) - 1} shape)"


def _parameters(noise: Noise) -> str:
    """The noise's full parameters for the lines under a table; a long list (a histogram's values) is counted,
    not printed: --json has it."""
    params = {k: v for k, v in noise.to_dict().items() if k not in ("family", "schema_version")}
    shown = (
        f"{name}=[{len(value)} values: see --json]"
        if isinstance(value, list) and len(value) > _LIST_SHOWN
        else f"{name}={value!r}"
        for name, value in params.items()
    )
    return f"{type(noise).__name__}({', '.join(shown)})"
