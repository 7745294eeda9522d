"""The paper's LMO grid (docs/theory.md §4.7), one shape per scale-equivalence class, and its moment table."""

from __future__ import annotations

import itertools
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..noise import LMO
from .cache import atomic_write
from .parallel import map_tasks

# Mixing weights, (theta, k) of the Gamma, Exponential rates, Uniform ranges.
PAPER_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(1, 10))
PAPER_GAMMAS = ((1.0, 2.0), (2.0, 2.0), (3.0, 2.0), (5.0, 1.0), (9.0, 0.5), (7.5, 1.0), (0.5, 1.0))
PAPER_RATES = (0.1, 0.5, 1.0, 5.0)
PAPER_UNIFORMS = ((0.0, 1.0), (1.0, 2.0))

TABLE_COLUMNS = ("variance", "mean_abs", "fisher", "lipschitz")  # the columns of LMO.moment_table
_TABLE_CHUNK = 512


def grid_spec() -> tuple:
    return PAPER_WEIGHTS, PAPER_GAMMAS, PAPER_RATES, PAPER_UNIFORMS


@lru_cache(maxsize=4)
def lmo_grid(spec: tuple) -> tuple[dict, ...]:
    """One representative (paper naming) per scale-equivalence class of the grid ``spec``: a1*G with
    G~Gamma(k, theta) is Gamma(k, a1*theta), a3*E is Exponential(rate/a3), a4*V is Uniform(a4*low, a4*high)."""
    weights, gammas, rates, uniforms = spec
    shapes: dict[tuple, dict] = {}
    for (a1, a3, a4), (theta, k), rate, (low, high) in itertools.product(
        itertools.product(weights, repeat=3), gammas, rates, uniforms
    ):
        unit = a1 * theta  # the Gamma part's scale; the other lengths are measured in it
        key = tuple(f"{v:.9g}" for v in (k, a3 / rate / unit, a4 * low / unit, a4 * high / unit))
        shapes.setdefault(
            key, {"a1": a1, "a3": a3, "a4": a4, "G_k": k, "G_theta": theta, "E_lambda": rate, "U_a": low, "U_b": high}
        )
    return tuple(shapes.values())


def _unit_moments(shapes: list[dict]) -> np.ndarray:
    return LMO.moment_table(LMO.from_paper(shape) for shape in shapes)


def grid_table(shapes, grid_digest: str, cache_dir: Path | None, n_jobs: int) -> np.ndarray:
    """``LMO.moment_table`` of the unit-scale ``shapes``, cached as ``lmo-grid-<digest>.npy`` (a damaged file is
    recomputed and overwritten)."""
    path = None if cache_dir is None else cache_dir / f"lmo-grid-{grid_digest}.npy"
    if path is not None and path.exists():
        try:
            table = np.load(path, allow_pickle=False)
            if table.shape == (len(shapes), len(TABLE_COLUMNS)) and not np.any(np.isnan(table)):
                return table
        except (OSError, ValueError, EOFError):  # damaged file: recompute and overwrite it
            pass
    chunks = [shapes[i : i + _TABLE_CHUNK] for i in range(0, len(shapes), _TABLE_CHUNK)]
    table = np.concatenate(map_tasks(_unit_moments, chunks, n_jobs, progress=None))
    if path is not None:
        atomic_write(path, lambda handle: np.save(handle, table))
    return table
