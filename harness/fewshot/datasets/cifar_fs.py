"""CIFAR-FS (Bertinetto et al., ICLR 2019): CIFAR-100 split by class, 64 / 16 / 20 classes
of 600 32x32 images (each class's official train and test images). Class order: the split
lists in `harness/assets/splits/cifar-fs`. Sources: see `_cifar.py`."""
from harness.fewshot.datasets import register
from harness.fewshot.datasets._cifar import CifarDataset, cifar_fs_classes, cifar_readers


@register("cifar_fs", version="1")
class CifarFS(CifarDataset):
    name = "cifar_fs"
    facts = CifarDataset.cifar_facts({"train": 64, "val": 16, "test": 20}, reference_sha256={
        # images sha256 of a build from the complete CIFAR-100 (every image pixel-exact)
        "train": "7abee548abf2e2aeb9b70063efdb26eb15d935559ead89532009e38d99a19a8c",
        "val": "5a3ef40129f6d166262ca4adbcf0d52e4cdff5abc13898627984284abc01b61a",
        "test": "c885d48ae34dbb68bef29ce3953d79e9de6bf851303b4b04dbfee7df3264185e",
    })
    split_classes = cifar_fs_classes()
    readers = cifar_readers("CIFAR_FS")
