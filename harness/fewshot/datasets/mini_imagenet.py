"""mini-ImageNet (Vinyals et al. 2016, Ravi & Larochelle split): 64 / 16 / 20 ImageNet
classes of 600 images, 84x84. Classes are wnids in sorted order. Sources: see `_imagenet.py`."""
from harness.fewshot.datasets import register
from harness.fewshot.datasets._imagenet import ImageNetDataset, mini_readers


@register("mini_imagenet", version="1")
class MiniImageNet(ImageNetDataset):
    name = "mini_imagenet"
    facts = ImageNetDataset.imagenet_facts({"train": 64, "val": 16, "test": 20}, per_class=600)
    readers = mini_readers()
    source_hint = "PATH/TO/FOLDER_WITH/mini-imagenet-cache-train.pkl"
