"""The RL family (Kurin et al., NeurIPS 2022, the Meta-World half): multi-task SAC on MT10 and
MT50 with the multi-task optimizers of the multi-task family, declared with the public API
(``harness.api``) and found through harness's ``harness.plugins`` entry point. Imports
neither torch nor metaworld: it is imported to plan.
"""
from harness.api import Family, Metric
from harness.rl.config import AXES_REQUIRED, KEYS

FAMILY = Family(
    name="rl",
    version="2",  # 2: success is averaged over the last evaluations and a goal sweep (was: final, training goal)
    help="multi-task RL (Kurin et al. 2022): Meta-World MT10/MT50, multi-task SAC, a multi-task optimizer on "
         "the per-task actor and critic losses",
    keys=KEYS,
    axes_required=AXES_REQUIRED,
    plan_columns=("dataset", "method", "steps", "seed"),
    label="{dataset} {method} seed {seed}",
    trainer="harness.rl.train:Trainer",
    metrics=(Metric("success", "higher", "%", bounds=(0, 100),
                    help="mean over tasks of each task's success rate over its evaluation episodes (a goal sweep), "
                         "averaged over the last score_evaluations evaluations"),),
    validation=(Metric("train_success", "higher", "%", bounds=(0, 100),
                       help="mean over tasks of the success rate of the last train_success_episodes training "
                            "episodes"),),
    # with the seed: the same envs, the same goals (training and evaluation)
    paired_by=("dataset", "horizon", "reward_function_version", "task_one_hot"),
    report="harness.rl.report:build",
    sources=("harness.rl.envs",),  # built by the benchmarks; the rest is in the trainer's imports
    check="harness.rl.config:config_problem",
)
