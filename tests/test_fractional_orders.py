"""Fractional orders of the vector Poisson bounds: the chord of the log-moment between integer orders
(docs/accounting.md, "Poisson subsampling"), checked against the exact sampled-Gaussian RDP (Mironov-Talwar-Zhang
series at fractional orders)."""

import numpy as np
import pytest

from lmodp_core.rdp import binomial_rdp, sampled_gaussian_rdp, zhu_wang_rdp
from lmodp_core.rdp.subsampled import chord_between_integer_orders

FRACTIONAL = np.array([1.5, 2.3, 2.5, 3.7, 5.5, 8.1, 10.2, 10.9, 17.5, 40.5])


@pytest.mark.parametrize("bound", [binomial_rdp, zhu_wang_rdp])
@pytest.mark.parametrize("rate, sigma", [(0.01, 1.0), (0.1, 2.0), (0.5, 1.5)])
def test_fractional_orders_are_sound_and_no_looser_than_the_next_integer(bound, rate, sigma):
    def gaussian(ells):
        return ells / (2 * sigma**2)

    fractional = bound(rate, gaussian, FRACTIONAL)
    assert np.all(fractional >= sampled_gaussian_rdp(rate, sigma, FRACTIONAL) * (1 - 1e-12))
    assert np.all(fractional <= bound(rate, gaussian, np.ceil(np.maximum(FRACTIONAL, 2.0))))


def test_chord_of_the_log_moment():
    def integer_bound(ells):
        return np.log(ells)  # any values at integer orders

    orders = np.array([1.4, 2.0, 3.25, 7.0])
    expected = [np.log(2.0), np.log(2.0), (0.75 * 2 * np.log(3.0) + 0.25 * 3 * np.log(4.0)) / 2.25, np.log(7.0)]
    assert chord_between_integer_orders(integer_bound, orders) == pytest.approx(expected, rel=1e-14)


def test_infinite_integer_bound_stays_infinite():
    orders = np.array([2.5, 3.0, 3.5])
    values = chord_between_integer_orders(lambda ells: np.where(ells >= 4, np.inf, 1.0), orders)
    assert values[0] == 1.0 and values[1] == 1.0 and values[2] == np.inf
