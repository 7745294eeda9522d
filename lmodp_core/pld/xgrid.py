"""A fine partition of the real line into cells, with the P- and Q-mass and loss range of each cell.

Used for densities without a closed-form loss CDF: the privacy loss log(p/q) is evaluated on the cells and
histogrammed (never assuming it is monotone in x: Laplace scale mixtures are not log-concave).

Layout: a uniform core [-A, A + s] with A = 30 typical scales, geometric tails out to where the noise's
survival function drops below ``_TAIL_MASS`` (the rest is returned as ``tail_p`` and sent to loss +inf, so no
mass is lost), split at every kink of p and q. Given a loss-grid step, cells whose loss changes by more than
step/16 are subdivided (at most ``_MAX_CELLS`` cells in all) and cut where the loss crosses a grid value, so
that almost every cell lies inside one loss bin (the rest, around extrema of the loss, are rounded up).
Cell masses use 3-point Gauss-Legendre (relative error ~1e-12 on the core cells of smooth pieces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .._logmath import logsumexp

_CORE_WIDTH = 30.0
_CORE_CELLS = 8192
_TAIL_RATIO = 1.03
_TAIL_MASS = 1e-40
_MAX_REACH = 1e30  # typical scales; heavier tails than this leave their mass at +inf (counted)
_MAX_CELLS = 2_000_000  # refinement budget; beyond it straddling cells are rounded up (looser, still sound)
_GL_NODES = np.array([-math.sqrt(0.6), 0.0, math.sqrt(0.6)])
_GL_LOG_WEIGHTS = np.log(np.array([5.0, 8.0, 5.0]) / 9.0)


@dataclass(frozen=True)
class Cells:
    """Per-cell log masses and loss range of a pair, plus Gauss-Legendre nodes for integrals of p and q."""

    log_p: np.ndarray
    log_q: np.ndarray
    loss_min: np.ndarray
    loss_max: np.ndarray
    tail_p: float
    node_log_weights: np.ndarray  # (cells, 3): log of the Gauss-Legendre weight times the cell half-width
    node_log_p: np.ndarray
    node_log_q: np.ndarray


def _reach(noise, shift: float) -> tuple[float, float]:
    """(A, X): core half-width and the point beyond which the survival function is below _TAIL_MASS."""
    scale = noise.typical_scale
    core = _CORE_WIDTH * scale
    candidates = core * 2.0 ** np.arange(0, int(math.log2(_MAX_REACH / _CORE_WIDTH)) + 1)
    survival = np.asarray(noise.sf(candidates), dtype=float)
    small = np.nonzero(survival <= _TAIL_MASS)[0]
    far = float(candidates[small[0]] if small.size else candidates[-1])
    return core, max(far, core) + shift


def _edges(noise, shift: float, breakpoints, core_cells: int) -> np.ndarray:
    core, far = _reach(noise, shift)
    uniform = np.linspace(-core, core + shift, core_cells + 1)
    n_tail = max(int(math.ceil(math.log(far / core) / math.log(_TAIL_RATIO))), 1)
    tail = core * np.geomspace(1.0, far / core, n_tail + 1)[1:]
    edges = np.concatenate([-(tail[::-1]), uniform, tail + shift, np.asarray(breakpoints, dtype=float)])
    return np.unique(edges)


def _refine(edges: np.ndarray, loss_at_edges: np.ndarray, step: float) -> np.ndarray:
    change = np.abs(np.diff(loss_at_edges))
    change = np.where(np.isfinite(change), change, 0.0)
    wanted = np.ceil(change / (step / 16.0))
    if wanted.sum() > _MAX_CELLS:
        wanted = np.ceil(wanted * (_MAX_CELLS / wanted.sum()))
    pieces = np.maximum(wanted, 1).astype(np.int64)
    if np.all(pieces == 1):
        return edges
    starts = np.repeat(edges[:-1], pieces)
    widths = np.repeat(np.diff(edges) / pieces, pieces)
    offsets = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return np.append(starts + offsets * widths, edges[-1])


def _split_at_grid(pair, edges: np.ndarray, loss_at_edges: np.ndarray, step: float) -> np.ndarray:
    """Add the points where the loss crosses a grid value inside a cell (bisection, 50 halvings), so that the
    cells lie inside one loss bin and take the exact connect-the-dots split instead of a round-up."""
    with np.errstate(invalid="ignore"):
        bin_a, bin_b = np.floor(loss_at_edges[:-1] / step), np.floor(loss_at_edges[1:] / step)
    crossing = np.isfinite(bin_a) & np.isfinite(bin_b) & (np.abs(bin_b - bin_a) == 1)
    if not crossing.any():
        return edges
    left, right = edges[:-1][crossing], edges[1:][crossing]
    target = np.maximum(bin_a, bin_b)[crossing] * step
    left_below = loss_at_edges[:-1][crossing] < target
    for _ in range(50):
        middle = 0.5 * (left + right)
        below = _pair_loss(pair, middle)[0] < target
        move_left = below == left_below
        left, right = np.where(move_left, middle, left), np.where(move_left, right, middle)
    return np.unique(np.concatenate([edges, 0.5 * (left + right)]))


def _pair_loss(pair, x):
    log_p, log_q = pair.log_densities(x)
    with np.errstate(invalid="ignore"):
        loss = log_p - log_q  # +inf where q = 0 < p
    return np.where(np.isneginf(log_p), -np.inf, loss), log_p, log_q


@lru_cache(maxsize=32)
def cells_for(pair, step: float | None = None, core_cells: int = _CORE_CELLS) -> Cells:
    """The partition for ``pair``; refined for a loss grid of ``step`` when given."""
    exact = pair.exact_cell_masses()
    if exact is not None:
        return _exact_cells(*exact)
    edges = _edges(pair.noise, pair.shift, pair.breakpoints, core_cells)
    if step is not None:
        loss_at_edges, _, _ = _pair_loss(pair, edges)
        edges = _refine(edges, loss_at_edges, step)
        edges = _split_at_grid(pair, edges, _pair_loss(pair, edges)[0], step)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    nodes = mid[:, None] + half[:, None] * _GL_NODES[None, :]
    node_loss, node_log_p, node_log_q = _pair_loss(pair, nodes.ravel())
    node_loss = node_loss.reshape(nodes.shape)
    node_log_p = node_log_p.reshape(nodes.shape)
    node_log_q = node_log_q.reshape(nodes.shape)
    edge_loss, _, _ = _pair_loss(pair, edges)
    with np.errstate(divide="ignore"):
        log_weights = np.log(half)[:, None] + _GL_LOG_WEIGHTS[None, :]
    samples = np.column_stack([edge_loss[:-1], node_loss, edge_loss[1:]])
    with np.errstate(invalid="ignore"):
        loss_min = np.min(np.where(np.isnan(samples), np.inf, samples), axis=1)
        loss_max = np.max(np.where(np.isnan(samples), -np.inf, samples), axis=1)
    noise, shift = pair.noise, pair.shift
    survival = np.asarray(noise.sf(np.array([-edges[0], edges[-1], edges[-1] - shift, -(edges[0] - shift)])))
    tail_p = float(np.sum(survival))  # both tails of f and of f(. - s): an upper bound on P's tail mass
    return Cells(
        logsumexp(log_weights + node_log_p, axis=1),
        logsumexp(log_weights + node_log_q, axis=1),
        loss_min,
        loss_max,
        tail_p,
        log_weights,
        node_log_p,
        node_log_q,
    )


def _exact_cells(log_p: np.ndarray, log_q: np.ndarray) -> Cells:
    """Cells from exact masses of cells on which the loss is constant (no quadrature, no tail left over); four
    empty cells at each end keep ``log_moment``'s end check quiet (the sums are exact)."""
    pad = np.full(4, -np.inf)
    log_p, log_q = np.concatenate([pad, log_p, pad]), np.concatenate([pad, log_q, pad])
    with np.errstate(invalid="ignore"):
        loss = np.where(np.isneginf(log_p), -np.inf, log_p - log_q)
    node_log_weights = np.tile(_GL_LOG_WEIGHTS - math.log(2.0), (log_p.size, 1))  # weights summing to 1 per cell
    return Cells(
        log_p,
        log_q,
        loss,
        loss,
        0.0,
        node_log_weights,
        np.repeat(log_p[:, None], 3, axis=1),
        np.repeat(log_q[:, None], 3, axis=1),
    )


def log_moment(cells: Cells, orders: np.ndarray) -> np.ndarray:
    """K(lambda) = log E_P[e^{lambda L}] = log int p^{1+lambda} q^{-lambda}, for each lambda (inf when the
    integrand is not negligible at the ends of the partition, i.e. the partition cannot resolve it)."""
    lam = np.asarray(orders, dtype=float)[:, None]
    log_w = cells.node_log_weights.ravel()[None, :]
    log_p, log_q = cells.node_log_p.ravel()[None, :], cells.node_log_q.ravel()[None, :]
    with np.errstate(invalid="ignore", over="ignore"):
        log_integrand = log_w + log_p + lam * (log_p - log_q)
    log_integrand = np.where(np.isnan(log_integrand), -np.inf, log_integrand)
    total = logsumexp(log_integrand, axis=1)
    ends = np.maximum(np.max(log_integrand[:, :12], axis=1), np.max(log_integrand[:, -12:], axis=1))
    unresolved = ends > total + math.log(1e-12)
    return np.where(unresolved | ~np.isfinite(total), np.inf, total)
