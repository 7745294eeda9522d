"""lmodp_torch: differentially private training of torch / Hugging Face models with any lmodp noise.

Importing it registers ``OpacusAccountant`` as Opacus's ``accountant="lmodp"``; ``PrivacyEngine`` is Opacus's
engine with ``noise=`` for any lmodp noise. ``PrivateTrainer`` is imported on first use, so that
``make_private`` works without transformers installed.
"""

from .engine import PrivacyEngine
from .noise import sample_noise
from .opacus_accountant import OpacusAccountant
from .optimizer import LMODPOptimizer
from .privacy import PrivateTraining, make_private

__all__ = [
    "sample_noise",
    "make_private",
    "PrivateTraining",
    "LMODPOptimizer",
    "PrivateTrainer",
    "PrivacyEngine",
    "OpacusAccountant",
]


def __getattr__(name):
    if name == "PrivateTrainer":
        from .hf import PrivateTrainer

        return PrivateTrainer
    raise AttributeError(f"module 'lmodp_torch' has no attribute {name!r}")
