"""The RL family (Kurin et al., NeurIPS 2022, the Meta-World half): multi-task SAC on MT10 and
MT50 with the multi-task optimizers of the multi-task family, declared with the public API
(``harness.api``) and found through harness's ``harness.plugins`` entry point. Imports
neither torch nor metaworld: it is imported to plan.
"""
from harness.api import Family, Metric
from harness.rl.config import AXES_REQUIRED, KEYS

FAMILY = Family(
    name="rl",
    version="1",
    help="multi-task RL (Kurin et al. 2022): Meta-World MT10/MT50, multi-task SAC, a multi-task optimizer on "
         "the per-task actor and critic losses",
    keys=KEYS,
    axes_required=AXES_REQUIRED,
    plan_columns=("dataset", "method", "steps", "seed"),
    label="{dataset} {method} seed {seed}",
    trainer="harness.rl.train:Trainer",
    metrics=(Metric("success", "higher", "%", help="mean success rate over the tasks at the final evaluation"),),
    report="harness.rl.report:build",
    sources=("harness.rl.envs",),  # built by the benchmarks; the rest is in the trainer's imports
    check="harness.rl.config:config_problem",
)
