"""Episodes and the on-device engine: reproducible sampling, exact gathers, faithful augmentation."""
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from harness.fewshot import augment
from harness.fewshot.datasets._base import Split
from harness.fewshot.engine import SplitTensor
from harness.fewshot.episodes import EpisodeSampler, fixed_episodes


class FakeDataset:
    mean, std, crop_padding = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), 4


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 12)
    return Split(images=rng.integers(0, 256, (120, 32, 32, 3), dtype=np.uint8), labels=labels,
                 classes=tuple(map(str, range(10))))


def test_sampler_is_seeded_and_episodes_are_well_formed(split):
    sampler = EpisodeSampler(split.labels, ways=5, per_class=6)
    first, classes = sampler.sample(np.random.default_rng(7), 50)
    again, _ = sampler.sample(np.random.default_rng(7), 50)
    assert np.array_equal(first, again)
    assert first.shape == (50, 5, 6)
    episode_labels = split.labels[first]
    assert (episode_labels == classes[..., None]).all()  # row c holds only class c's images
    assert all(len(set(row)) == 5 for row in classes)  # distinct classes
    assert all(len(set(images)) == 6 for images in first.reshape(-1, 6))  # no image twice in a class


def test_fixed_episodes_depend_only_on_their_definition(split):
    a = fixed_episodes("test", split.labels, 5, 1, 5, 250, seed=0)
    assert np.array_equal(a, fixed_episodes("test", split.labels, 5, 1, 5, 250, seed=0))
    assert np.array_equal(a[:120], fixed_episodes("test", split.labels, 5, 1, 5, 120, seed=0))
    assert not np.array_equal(a, fixed_episodes("test", split.labels, 5, 1, 5, 250, seed=1))
    assert not np.array_equal(a, fixed_episodes("val", split.labels, 5, 1, 5, 250, seed=0))


def test_gather_normalises_exactly(split):
    images = SplitTensor(split, FakeDataset, torch.device("cpu"))
    batch = images.gather(np.array([[3, 7], [11, 0]]))
    expected = (torch.from_numpy(split.images[[3, 7, 11, 0]]).permute(0, 3, 1, 2).float() / 255
                - torch.tensor(FakeDataset.mean).view(1, 3, 1, 1)) / torch.tensor(FakeDataset.std).view(1, 3, 1, 1)
    assert torch.allclose(batch, expected, atol=1e-6)


def test_augmentation_is_reproducible_per_seed(split):
    images = SplitTensor(split, FakeDataset, torch.device("cpu"))
    draw = lambda seed: images.gather(np.arange(40), torch.Generator().manual_seed(seed))
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
    assert not torch.allclose(draw(3), images.gather(np.arange(40)))


def test_crop_and_flip_is_a_window_of_the_zero_padded_image_maybe_mirrored():
    images = torch.rand(200, 3, 10, 10)
    out = augment.crop_and_flip(images, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    offsets, mirrored = set(), 0
    for i in range(len(images)):
        found = [(y, x, m) for y in range(5) for x in range(5) for m in (False, True)
                 if torch.equal(padded[i, :, y:y + 10, x:x + 10].flip(-1) if m else padded[i, :, y:y + 10, x:x + 10], out[i])]
        assert found, f"image {i} is not a (mirrored) crop of its padded original"
        offsets.add(found[0][:2])
        mirrored += found[0][2]
    assert len(offsets) > 10  # offsets vary across images
    assert 70 < mirrored < 130  # about half mirrored


def test_crop_and_flip_without_padding_or_flip_is_the_identity():
    images = torch.randint(0, 256, (8, 1, 6, 6), dtype=torch.uint8)
    assert torch.equal(augment.crop_and_flip(images, 0, torch.Generator(), flip=False), images)


@pytest.mark.parametrize("ours, theirs", [
    (augment.adjust_brightness, TF.adjust_brightness),
    (augment.adjust_contrast, TF.adjust_contrast),
    (augment.adjust_saturation, TF.adjust_saturation),
])
def test_colour_ops_match_torchvision_per_image(ours, theirs):
    images = torch.rand(6, 3, 8, 8)
    factors = torch.tensor([0.6, 0.8, 1.0, 1.1, 1.3, 1.4])
    batched = ours(images.clone(), factors.view(-1, 1, 1, 1))
    for image, factor, result in zip(images, factors, batched):
        assert torch.allclose(result, theirs(image, float(factor)), atol=1e-5)
