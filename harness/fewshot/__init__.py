"""Few-shot classification: datasets, episodes, backbones, methods, evaluation heads.

Importing this package (or its registries) does not import torch.
"""
