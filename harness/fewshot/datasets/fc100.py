"""FC100 (Oreshkin et al., NeurIPS 2018): CIFAR-100 split by superclass, 12 / 4 / 4
superclasses = 60 / 20 / 20 classes of 600 32x32 images (each class's official train and
test images). Class order: the superclass lists in `harness/assets/splits/fc100`, then
class names. Sources: see `_cifar.py`."""
from harness.fewshot.datasets import register
from harness.fewshot.datasets._cifar import CifarDataset, cifar_readers, fc100_classes


@register("fc100", version="1")
class FC100(CifarDataset):
    name = "fc100"
    facts = CifarDataset.cifar_facts({"train": 60, "val": 20, "test": 20}, reference_sha256={
        # images sha256 of a build from the complete CIFAR-100 (every image pixel-exact)
        "train": "69784ac203448edcf942e6c38941b7d958e5c2a20257d1fbabb82737ac39ba9b",
        "val": "ec0e70dab37355e91323236564a4859d1924ccf662e2c282d5d0f8f62233cfd0",
        "test": "6e438ee6ba1bcb1b4d55371077ff3c43f6f690ffc75c3a75598e02f711d9d770",
    })
    split_classes = fc100_classes()
    readers = cifar_readers("FC100")
