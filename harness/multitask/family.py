"""The multi-task learning family (Kurin et al., NeurIPS 2022), declared with the public
API (``harness.api``) and found through harness's ``harness.plugins`` entry point. No
torch here: it is imported to plan.
"""
from harness.api import Family, Metric
from harness.multitask.config import AXES_REQUIRED, KEYS

FAMILY = Family(
    name="multitask",
    version="1",
    help="multi-task learning (Kurin et al. 2022): one network, several tasks, an optimizer combining them",
    keys=KEYS,
    axes_required=AXES_REQUIRED,
    plan_columns=("dataset", "method", "seed"),
    label="{dataset} {method} seed {seed}",
    trainer="harness.multitask.train:Trainer",
    metrics=(Metric("average", "higher", "%", samples="example_scores", samples_name="images",
                    help="mean of the higher-is-better task metrics, at the best validation epoch",
                    shared_by=("dataset",),  # the test split is the dataset's
                    bounds=(0, 100),
                    samples_required=False),),  # Multi-MNIST, CelebA: per test image; Cityscapes' mIoU has none
    validation=(Metric("val_average", "higher", "%", bounds=(0, 100),
                       help="the validation average at the selected epoch"),),
    paired_by=("dataset", "batch_size", "train_images"),  # with the seed: the same batches in the same order
    report="harness.multitask.report:build",
    report_formats=("markdown", "csv", "latex", "json"),
    check="harness.training:device_problem",
)
