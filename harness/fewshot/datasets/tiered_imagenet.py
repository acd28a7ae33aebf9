"""tiered-ImageNet (Ren et al. 2018): 351 / 97 / 160 ImageNet classes grouped by high-level
category, 448,695 / 124,261 / 206,209 images of 84x84. Classes keep the source's label
order. Sources: see `_imagenet.py`; it is prepared streaming into memory-mapped arrays."""
from harness.fewshot.datasets import register
from harness.fewshot.datasets._imagenet import ImageNetDataset, tiered_readers


@register("tiered_imagenet", version="1")
class TieredImageNet(ImageNetDataset):
    name = "tiered_imagenet"
    facts = ImageNetDataset.imagenet_facts({"train": 351, "val": 97, "test": 160},
                                           totals={"train": 448_695, "val": 124_261, "test": 206_209})
    readers = tiered_readers()
    source_hint = "PATH/TO/FOLDER_WITH/train_images_png.pkl"
