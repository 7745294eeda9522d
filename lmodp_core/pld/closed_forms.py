"""The built-in closed forms of the PLD layer, registered with ``registry``: Gaussian, Laplace and LMO noise."""

from __future__ import annotations

from ..geometry import Geometry
from ..noise import LMO, Gaussian, Laplace
from .discretise import gaussian_loss_pmf
from .registry import dominating_shift_closed_form, loss_pmf_closed_form, top_loss_closed_form


@dominating_shift_closed_form.register(Gaussian)
def _gaussian_dominates(noise: Gaussian, geometry: Geometry) -> bool:
    return True  # rotation invariance: every clipped difference reduces to one coordinate of norm <= radius


@dominating_shift_closed_form.register(Laplace)
def _laplace_dominates(noise: Laplace, geometry: Geometry) -> bool | None:
    if geometry.shift_exponent == 0:
        return True  # delta_s(eps) = 1 - e^{(eps - s/b)/2}: increasing in s
    if geometry.shift_exponent == 1:
        return True  # the 1-D shift at the clip dominates every ||v||_1 <= C (docs/accounting.md, Laplace under L1Ball)
    return None


@dominating_shift_closed_form.register(LMO)
def _lmo_dominates(noise: LMO, geometry: Geometry) -> bool | None:
    """Scalar: a Laplace scale mixture's hockey-stick curve is non-decreasing in the shift, at every epsilon
    (docs/accounting.md, "Shift dominance for Laplace scale mixtures"). Vector geometry: no proof (RDP)."""
    return True if geometry.shift_exponent == 0 else None


@loss_pmf_closed_form.register(Gaussian)
def _gaussian_loss_pmf(noise: Gaussian, pair, step: float, low: int, high: int, tilt: float):
    return gaussian_loss_pmf(pair, step, low, high, tilt)


@top_loss_closed_form.register(Gaussian)
def _gaussian_top_loss(noise: Gaussian, pair) -> float:
    return 0.0  # the Gaussian loss is continuous: no atom
