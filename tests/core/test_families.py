"""The built-in families' declarations (validation metrics, what seeds share, bounds), and
their boundaries: a family uses another only through its public parts, never its private
modules (a name starting with "_") nor its trainer. What all trainers share lives in the
core (harness.training, harness.datadir); rl's use of the multi-task optimizers (their
registry and their base class, the components' public interface) is allowed."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_architecture import imported_modules

import harness
from harness import plugins

FAMILIES = ("fewshot", "multitask", "rl")
PUBLIC_COMPONENT_BASES = {"harness.multitask.optimizers._base"}


def foreign_private_imports(family: str) -> dict:
    found = {}
    for path in sorted((Path(harness.__file__).parent / family).rglob("*.py")):
        bad = sorted(module for module in imported_modules(path)
                     if module.startswith("harness.") and module.split(".")[1] in FAMILIES
                     and module.split(".")[1] != family
                     and not any(module == base or module.startswith(f"{base}.") for base in PUBLIC_COMPONENT_BASES)
                     and any(part.startswith("_") or part == "train" for part in module.split(".")[2:]))
        if bad:
            found[str(path.relative_to(Path(harness.__file__).parent))] = bad
    return found


def test_no_family_imports_another_familys_private_modules_or_trainer():
    assert {family: found for family in FAMILIES if (found := foreign_private_imports(family))} == {}


def test_the_check_finds_such_an_import(tmp_path, monkeypatch):
    package = tmp_path / "harness"
    (package / "rl").mkdir(parents=True)
    (package / "rl" / "x.py").write_text("from harness.multitask.train import derived_seed\n"
                                         "from harness.fewshot.datasets._files import reading\n")
    monkeypatch.setattr(harness, "__file__", str(package / "__init__.py"))
    assert foreign_private_imports("rl") == {
        "rl/x.py": ["harness.fewshot.datasets._files", "harness.fewshot.datasets._files.reading",
                    "harness.multitask.train", "harness.multitask.train.derived_seed"]}


@pytest.mark.parametrize("name, validation, paired_by", [
    ("fewshot", "val_accuracy", None),
    ("multitask", "val_average", ("dataset", "batch_size", "train_images")),
    ("rl", "train_success", ("dataset", "horizon", "reward_function_version", "task_one_hot")),
])
def test_each_family_declares_its_validation_metric_what_seeds_share_and_bounds(name, validation, paired_by):
    family = plugins.family(name)
    assert [m.name for m in family.validation] == [validation] and family.paired_by == paired_by
    assert all(m.bounds == (0, 100) for m in (*family.metrics, *family.validation) if m.unit == "%")


def test_multitask_average_has_per_image_samples_that_cityscapes_may_lack():
    average = plugins.family("multitask").metric("average")
    assert (average.samples, average.samples_name, average.shared_by) == ("example_scores", "images", ("dataset",))
    assert average.samples_required is False
