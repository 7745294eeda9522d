"""Extension points of the RDP layer: closed forms chosen by noise family (``functools.singledispatch``).

Each registry answers None for a family that registers nothing, and the caller then falls back to the generic
numerics: quadrature for r_a(s) (``divergence``), the sup over shifts (``per_step``) and the generic subsampling
bounds (``subsampled``). A family registers where it has an exact formula, e.g.

    @renyi_shift_closed_form.register
    def _(noise: StudentT, shifts, orders): ...

The built-in registrations (Gaussian, Laplace) are in ``closed_forms``; docs/architecture.md has the recipe.
"""

from __future__ import annotations

from functools import singledispatch

import numpy as np

from ..geometry import Geometry
from ..noise import Noise


@singledispatch
def renyi_shift_closed_form(noise: Noise, shifts: np.ndarray, orders: np.ndarray) -> np.ndarray | None:
    """r_a(s) = D_a(f(. - s) || f) for every shift (rows, >= 0) and order (columns, > 1), or None (no closed form:
    quadrature)."""
    return None


@singledispatch
def unsampled_rdp_closed_form(noise: Noise, geometry: Geometry, orders: np.ndarray) -> np.ndarray | None:
    """Per-step RDP without subsampling in ``geometry`` (any dimension), or None (the sup over shifts)."""
    return None


@singledispatch
def step_rdp_closed_form(noise: Noise, geometry: Geometry, sample_rate: float, orders: np.ndarray) -> np.ndarray | None:
    """RDP of one Poisson-subsampled step (``sample_rate`` 1 = no subsampling), or None (the generic bounds)."""
    return None


def _registered(registry, noise: Noise) -> bool:
    return registry.dispatch(type(noise)) is not registry.dispatch(object)


def has_renyi_closed_form(noise: Noise) -> bool:
    """True when the family registered a closed-form r_a(s) (exact at every scale, no quadrature)."""
    return _registered(renyi_shift_closed_form, noise)


def has_step_rdp_closed_form(noise: Noise) -> bool:
    """True when the family registered a closed-form RDP of a sampled step (no RDP curve to compute numerically)."""
    return _registered(step_rdp_closed_form, noise)
