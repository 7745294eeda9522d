"""Extension points of the PLD layer, chosen by noise family (``functools.singledispatch``).

Each registry answers None for a family that registers nothing, and the caller then falls back to the generic
path: no dominating pair beyond an exact ``dominating_shift_proven`` hook (RDP answers), and the histogram of
``xgrid`` cells in ``discretise``. A family registers where it knows more, e.g.

    @dominating_shift_closed_form.register(StudentT)
    def _(noise, geometry): ...

The built-in registrations (Gaussian, Laplace, LMO) are in ``closed_forms``; docs/architecture.md has the recipe.
"""

from __future__ import annotations

from functools import singledispatch

from ..geometry import Geometry
from ..noise import Noise
from .pmf import LossPMF


@singledispatch
def dominating_shift_closed_form(noise: Noise, geometry: Geometry) -> bool | None:
    """True when the pair with shift ``geometry.radius`` is proven to dominate every step of ``noise`` in
    ``geometry`` (Poisson-sampled or not); None when the family proves nothing for it (the generic checks decide).

    For ``Scalar`` geometry True claims a little more, and the RDP layer relies on it
    (``rdp.certified_sup.proven_shift_monotone``): the hockey-stick curve is non-decreasing in the shift on
    (0, radius], i.e. every shift is dominated by every larger one, as the built-in proofs (Gaussian, Laplace, LMO)
    show."""
    return None


@singledispatch
def loss_pmf_closed_form(noise: Noise, pair, step: float, low: int, high: int, tilt: float) -> LossPMF | None:
    """The ``LossPMF`` of one step of ``pair`` (its ``noise`` is ``noise``) on the grid indices low..high, computed
    from closed forms, or None (the generic histogram of ``xgrid`` cells)."""
    return None


@singledispatch
def top_loss_closed_form(noise: Noise, pair) -> float | None:
    """The largest finite privacy loss of ``pair`` where the family knows it (0 where its loss has no atom), or
    None (read off the ``xgrid`` cells)."""
    return None
