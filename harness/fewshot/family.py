"""The few-shot classification family (Wang, Zhao, Li, ICML 2021), declared with the
public API (``harness.api``) and found through harness's ``harness.plugins`` entry point,
like any third party's family. No torch here: it is imported to plan.
"""
from harness.api import Family, Metric
from harness.fewshot.config import AXES_REQUIRED, KEYS

FAMILY = Family(
    name="fewshot",
    version="1",
    help="few-shot classification (Wang et al. 2021): episodes of N-way K-shot tasks",
    keys=KEYS,
    axes_required=AXES_REQUIRED,
    plan_columns=("dataset", "ways", "shots", "method", "backbone", "seed"),
    label="{dataset} {ways}-way {shots}-shot {method} seed {seed}",
    trainer="harness.fewshot.train:Trainer",
    metrics=(Metric("accuracy", "higher", "%", samples="episode_accuracies", samples_name="episodes",
                    help="mean accuracy over the fixed test episodes",
                    # the test episodes are a function of these (and of the split, ways, shots)
                    shared_by=("dataset", "ways", "shots", "test_episodes", "test_queries", "eval_seed"),
                    bounds=(0, 100)),),
    validation=(Metric("val_accuracy", "higher", "%", bounds=(0, 100),
                       help="mean accuracy over the validation episodes at the selected step"),),
    paired_by=None,  # seeds share only their test episodes (the metric's shared_by)
    check="harness.fewshot.checks:run_problem",
)
