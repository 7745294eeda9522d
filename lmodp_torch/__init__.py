"""lmodp_torch: differentially private training of torch / Hugging Face models with any lmodp noise."""
from .noise import sample_noise
from .optimizer import LMODPOptimizer
from .hf import PrivateTrainer
from .privacy import PrivateTraining, make_private

__all__ = ["sample_noise", "make_private", "PrivateTraining", "LMODPOptimizer", "PrivateTrainer"]
