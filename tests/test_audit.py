"""Audit of the published LMO sets: paper-style epsilon (reference) next to the sound SST-2 epsilon."""

import json
import math

import pytest

from lmodp_core import LMO, L2Ball, Scalar
from lmodp_core.auditing import audit, published_parameters, sst2_setting


def test_sst2_setting():
    setting = sst2_setting()
    assert setting["steps"] == math.ceil(6 * 67349 / 2048) == 198
    assert setting["sample_rate"] == pytest.approx(2048 / 67349)
    assert setting["delta"] == 1e-10 and setting["geometry"] == L2Ball(1.0)


def test_published_sets_are_shipped():
    sets = published_parameters()["sets"]
    assert [s["label"] for s in sets] == ["0.3", "0.7", "2", "3", "5"]
    assert (
        LMO.from_paper(sets[0]).to_paper()
        == LMO.from_paper(dict(a1=0.1, a3=0.1, a4=0.1, G_k=1, G_theta=0.5, E_lambda=5, U_a=1, U_b=2)).to_paper()
    )


def test_audit_reproduces_the_paper_and_shows_the_sound_epsilon():
    entry = published_parameters()["sets"][0]
    result = audit(entry, **sst2_setting(), label="0.3")
    assert result.paper_epsilon == pytest.approx(0.2932, abs=1e-4) and result.paper_order == 128.0
    assert result.paper_epsilon_valid_orders == pytest.approx(1.3083, abs=1e-3)
    # the guarantee for the real mechanism (L2 clipping, sampling, 198 steps) is far above the paper's number
    assert math.isfinite(result.sound_epsilon) and result.sound_epsilon > 2 * result.paper_epsilon
    assert result.asymptotic_epsilon <= result.sound_epsilon
    assert result.paper_overall_epsilon < result.paper_epsilon  # F4: the Gaussian detour shrinks it further
    assert json.loads(json.dumps(result.to_dict()))["label"] == "0.3"


def test_audit_accepts_an_lmo_and_other_geometries(lmo_paper):
    result = audit(lmo_paper, 1, 1.0, 1e-5, Scalar(1.0), method="rdp")
    assert result.sound_method == "rdp" and math.isfinite(result.sound_epsilon)


@pytest.mark.parametrize(
    "kwargs, name", [({"steps": 0}, "steps"), ({"sample_rate": 1.5}, "sample_rate"), ({"delta": 0.0}, "delta")]
)
def test_bad_inputs_raise(lmo_paper, kwargs, name):
    args = {"steps": 10, "sample_rate": 0.1, "delta": 1e-5, **kwargs}
    with pytest.raises(ValueError, match=name):
        audit(lmo_paper, **args)
    with pytest.raises(ValueError, match="missing"):
        audit({"a1": 0.1}, 10, 0.1, 1e-5)
