"""Figures of the command line: calibrated noise densities, and epsilon over the steps of a training run.

Both need matplotlib (``pip install 'lmodp[plot]'``). ``check_figure_path`` tells up front, before any
computation, whether a figure can be written to a path; every function here raises ValueError on a bad path or a
missing matplotlib.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .accountant import Accountant, EpsilonReport
from .pld import pld_epsilon
from .rdp import epsilon_from_rdp, step_rdp

_RDP_POINTS = 60  # step counts on the RDP curve (cheap: one per-step curve scaled by t)
_PLD_POINTS = 12  # step counts on the PLD curve (one composition each)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plots need matplotlib (pip install 'lmodp[plot]')") from None
    return plt


def check_figure_path(path) -> Path:
    """``path`` as a Path once a figure can be written there: matplotlib imports, the folder exists and is
    writable, and the suffix is an image format matplotlib writes (no suffix = PNG)."""
    path = Path(path)
    _pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder, give a file name such as {path / 'figure.png'}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write {path}: permission denied")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix and path.suffix[1:].lower() not in formats:
        raise ValueError(
            f"cannot write {path}: unknown image format {path.suffix!r}; use one of "
            f"{', '.join('.' + name for name in sorted(formats))}"
        )
    return path


def plot_noise_densities(result, path) -> None:
    """Every calibrated candidate density of an ``OptimizeResult`` (the winner solid) at the same sound epsilon."""
    plt = _pyplot()
    gaussian = next(c for c in result.candidates if c.family == "gaussian").noise
    x = np.linspace(-4.0 * gaussian.sigma, 4.0 * gaussian.sigma, 801)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    other_styles = iter(("--", ":", "-."))
    for candidate in result.candidates:
        style = "-" if candidate.noise == result.noise else next(other_styles)
        axis.plot(
            x,
            candidate.noise.pdf(x),
            style,
            label=f"{candidate.family}: {result.objective_name}={candidate.objective:.4g}",
        )
    axis.set_xlabel("noise per coordinate (units of the clip)")
    axis.set_ylabel("density")
    inputs = result.inputs
    axis.set_title(
        f"calibrated to sound epsilon={inputs['target_epsilon']:g}, delta={inputs['target_delta']:g}, "
        f"T={inputs['steps']}, q={inputs['sample_rate']:g}",
        fontsize=9,
    )
    axis.legend(fontsize=8)
    _save(figure, plt, path)


def plot_epsilon_over_steps(accountant: Accountant, report: EpsilonReport, path) -> None:
    """Sound epsilon at ``report.delta`` against the number of steps of a one-mechanism ledger, one curve per method.

    The RDP curve is drawn always; the PLD curve when ``report`` (the accountant's report at its full length) used
    or computed PLD. The reported value is marked with its method.
    """
    if len(accountant.ledger) != 1:
        raise ValueError(f"the plot needs a ledger of one mechanism, got {len(accountant.ledger)}")
    ((mechanism, steps),) = accountant.ledger
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    per_step = step_rdp(mechanism.noise, mechanism.geometry, mechanism.sampling, accountant.orders)
    counts = np.unique(np.round(np.geomspace(1, steps, _RDP_POINTS)).astype(int))
    rdp_curve = [epsilon_from_rdp(accountant.orders, t * per_step, report.delta, warn=False)[0] for t in counts]
    axis.plot(counts, rdp_curve, label="RDP (sound upper bound)")
    if report.pld_epsilon is not None:
        counts = np.unique(np.round(np.geomspace(1, steps, _PLD_POINTS)).astype(int))
        pld_curve = [pld_epsilon([(mechanism, int(t))], report.delta)[0] for t in counts]
        axis.plot(counts, pld_curve, "o--", markersize=3, label="PLD (sound upper bound)")
    axis.plot(
        [steps],
        [report.epsilon],
        "k*",
        markersize=9,
        label=f"reported at T={steps}: {report.epsilon:.4g} ({report.method})",
    )
    axis.set_xscale("log")
    axis.set_xlabel("steps")
    axis.set_ylabel(f"epsilon at delta={report.delta:g}")
    axis.legend(fontsize=8)
    _save(figure, plt, path)


def _save(figure, plt, path) -> None:
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        plt.close(figure)
