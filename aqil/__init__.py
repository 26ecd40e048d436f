"""aqil: a cached DVC pipeline reproducing Augmented Q-Imitation-Learning (arXiv:2004.00993)."""

__version__ = "0.1.0"
