"""Multi-task learning (Kurin et al., NeurIPS 2022, "In Defense of the Unitary Scalarization").

- ``config.py``: the run config keys (pure Python);
- ``datasets/``: multi_mnist (built from the shipped MNIST test set), celeba, cityscapes;
- ``models/``: multilenet, resnet18_celeba, resnet50_dilated_deeplab (trunk + task heads);
- ``optimizers/``: the multi-task optimizers (unitary, pcgrad, mgda_ub, ...);
- ``tasks.py``: per-task losses and metrics; ``batches.py``: a split as device tensors;
- ``step.py``: one step's gradients for each optimizer space; ``train.py``: the Trainer.

Importing this package, its registries or ``config`` does not import torch.
"""
