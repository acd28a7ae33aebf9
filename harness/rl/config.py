"""The run configuration keys of the RL family (Kurin et al. 2022, Meta-World MT10/MT50 with
multi-task SAC): every key, its type, default and meaning. Pure Python, no torch: the
suite validator checks every value against this table.

The defaults are the recipe of the paper's scripts (yobibyte/unitary-scalarization-dmtl,
``rl_experiments/mtrl``; see notes/rl_family.md), except where a key says otherwise.
``method`` takes its names from the SAME registry as the multi-task family.
"""
from __future__ import annotations

from harness.api import family_keys
from harness.keys import REQUIRED, Key
from harness.multitask.optimizers import OPTIMIZERS
from harness.rl.benchmarks import BENCHMARKS

MAX_HORIZON = 500  # metaworld 3 envs raise past their max_path_length of 500
GOALS_PER_TASK = 50  # metaworld 3's benchmarks give every task 50 goals (its _N_GOALS)

KEYS: dict[str, Key] = {
    # what is run
    "dataset": Key(str, REQUIRED, "benchmark: mt10 or mt50 (metaworld 3)", choices=BENCHMARKS),
    "method": Key(str, REQUIRED, "multi-task optimizer applied to the actor and critic losses "
                                 "(harness/multitask/optimizers), e.g. unitary, pcgrad, mgda_ub", choices=OPTIMIZERS),
    "seed": Key(int, REQUIRED, "seed of everything: goals, networks, exploration, batches, the optimizer's randomness",
                minimum=0),
    # environment
    "horizon": Key(int, 150, "episode length in vector steps; every env is reset together at it (the paper's "
                             "150; metaworld 3's own limit is 500, the most allowed)", minimum=1),
    "reward_function_version": Key(str, "v1", "metaworld 3's reward_function_version: v1 = the original reward "
                                              "functions the paper trained on, v2 = metaworld 3's default", choices=("v1", "v2")),
    "task_one_hot": Key(bool, False, "append the task's one-hot to the observation (the paper's networks saw no task id)"),
    # schedule
    "steps": Key(int, 2_000_000, "vector env steps (each steps every task's env once: the paper's 2M steps per "
                                 "task); training runs the whole episodes that fit, floor(steps / horizon)", minimum=1),
    "init_steps": Key(int, 1500, "vector steps of uniformly random actions first; at that step, init_steps updates "
                                 "at once, then one update per vector step", minimum=0),
    "eval_every": Key(int, 30_000, "vector steps between evaluations (a multiple of horizon; the paper's scripts "
                                   "evaluate every 30,000 = lcm(150, 10,000)); also at step 0 and at the end", minimum=1),
    # the score (rl.md, verdicts.md "RL aggregates"); the paper's protocol: eval_episodes 1, score_evaluations 1
    "eval_episodes": Key(int, 10, "evaluation episodes per task at every evaluation, deterministic (mean) actions; "
                                  "episode k runs on the k-th goal of the task's sweep: its training goal first, then "
                                  "its other metaworld goals in an order fixed by the seed (50 goals per task; "
                                  "metaworld 3's own evaluation runs one episode per goal). With deterministic actions "
                                  "episodes on one goal are identical, so distinct goals are what make several "
                                  "episodes worth running. 1 = the training goal only (the paper's)", minimum=1),
    "score_evaluations": Key(int, 3, "a run's score (metrics.success, metrics.tasks) is each task's success averaged "
                                     "over the last N evaluations (fewer if the run has fewer); 1 = the final "
                                     "evaluation only (the paper's)", minimum=1),
    "train_success_episodes": Key(int, 10, "the validation figure metrics.train_success: each task's success in its "
                                           "last N training episodes (exploration noise and random actions "
                                           "included), averaged over the tasks", minimum=1),
    # SAC
    "batch_size": Key(int, 1280, "transitions per update, drawn uniformly from the shared buffer (all tasks)", minimum=1),
    "buffer_capacity": Key(int, 4_000_000, "replay buffer capacity in transitions, all tasks together", minimum=1),
    "hidden_dim": Key(int, 400, "width of the hidden layers of the actor and of both Q-networks", minimum=1),
    "hidden_layers": Key(int, 3, "hidden layers of the actor and of both Q-networks", minimum=1),
    "lr": Key(float, 3e-4, "Adam learning rate of actor, critic and temperature (betas 0.9, 0.999)",
              minimum=0.0, exclusive=True),
    "discount": Key(float, 0.99, "discount factor gamma", minimum=0.0, exclusive=True),
    "tau": Key(float, 0.005, "soft target update rate, every update", minimum=0.0, exclusive=True),
    "init_temperature": Key(float, 1.0, "initial entropy temperature alpha (one, shared by all tasks, learned)",
                            minimum=0.0, exclusive=True),
    "actor_weight_decay": Key(float, 0.0, "Adam's coupled L2 penalty on the actor (the paper's regularised unitary: 3e-4)",
                              minimum=0.0),
    "critic_weight_decay": Key(float, 0.0, "Adam's coupled L2 penalty on the critic", minimum=0.0),
    "reward_normalisation": Key(bool, True, "divide each sampled reward by its task's running reward std over every "
                                            "reward ever added (no mean subtraction), as the paper's buffer does"),
    "clip_targets": Key(bool, False, "cap the Q target at the task's max (normalised) reward / (1 - discount)"),
    "alpha_uses_method": Key(bool, None, "the temperature's loss goes through the multi-task optimizer too; null = as "
                                         "the paper's scripts: only for pcgrad", nullable=True),
    # optimizer options: the optimizers declare them (register(..., keys=...)); these give them
    # the RL scripts' defaults, and still count in a run id only where its optimizer reads them
    "mgda_normalization": Key(str, "l2", "mgda_ub: gradient normalisation (the RL scripts: l2); the update is the "
                                         "weighted sum of the normalised gradients", choices=("loss+", "l2", "loss", "none"),
                              overrides_component=True),
    "imtl_learn_scales": Key(bool, False, "imtl: learn IMTL-L loss scales (the RL scripts: off)", overrides_component=True),
    "dwa_temperature": Key(float, 2.0, "dwa: softmax temperature (an 'epoch' is one episode of updates)",
                           minimum=0.0, exclusive=True, overrides_component=True),
    # where
    "device": Key(str, "auto", "auto (cuda when available), cpu or cuda", choices=("auto", "cpu", "cuda")),
}

AXES_REQUIRED = ("dataset", "method", "seed")

# The methods whose scripts leave `alpha_use_naive_opt` unset, so the temperature's loss also
# goes through them (rl.md section 1).
ALPHA_THROUGH_METHOD = ("pcgrad",)


def schema() -> dict:
    """Every key of an RL run: KEYS and the keys its components (the optimizers) declare."""
    return family_keys("rl", KEYS)


def optimizer_options(config: dict) -> dict:
    """Constructor arguments of the run's multi-task optimizer, from the config keys it
    declares (``config`` resolved: the RL defaults of KEYS apply)."""
    return OPTIMIZERS.options(config["method"], config)


def alpha_uses_method(config: dict) -> bool:
    value = config["alpha_uses_method"]
    return config["method"] in ALPHA_THROUGH_METHOD if value is None else value


def resolved(config: dict) -> dict:
    """``config`` with every key, defaults filled in. ValueError on an unknown or missing key,
    or on a combination of values that cannot run (``config_problem``)."""
    keys = schema()
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise ValueError(f"unknown rl config keys: {unknown}")
    missing = [name for name, key in keys.items() if key.default is REQUIRED and name not in config]
    if missing:
        raise ValueError(f"missing required rl config keys: {missing}")
    full = {name: config.get(name, key.default) for name, key in keys.items()}
    problem = combination_problem(full)
    if problem:
        raise ValueError(problem)
    return full


def combination_problem(config: dict) -> str | None:
    """What no single key's bounds can say: why these values cannot run together, or None."""
    horizon = config.get("horizon", KEYS["horizon"].default)
    steps = config.get("steps", KEYS["steps"].default)
    eval_every = config.get("eval_every", KEYS["eval_every"].default)
    if horizon > MAX_HORIZON:
        return f"horizon: {horizon} is longer than metaworld 3's episodes can be ({MAX_HORIZON} steps at most)"
    if steps < horizon:
        return f"steps: {steps} is shorter than one episode (horizon {horizon}): nothing would be trained"
    episodes = config.get("eval_episodes", KEYS["eval_episodes"].default)
    if episodes > GOALS_PER_TASK:
        return (f"eval_episodes: {episodes} is more than the {GOALS_PER_TASK} goals metaworld gives each task "
                f"(an episode per goal at most; with deterministic actions more would repeat one)")
    if eval_every % horizon:
        low = eval_every // horizon * horizon or horizon
        return (f"eval_every: {eval_every} is not a multiple of horizon {horizon} (evaluations happen between "
                f"episodes); use {low} or {low + horizon}")
    return None


def config_problem(config: dict, cluster: str | None = None, gpus: int = 0) -> str | None:
    """The family's ``check`` before dispatch: a bad combination of values, or a device that
    cannot work where the run is sent. Imports torch only for ``device: cuda``."""
    problem = combination_problem(config)
    if problem or config.get("device") != "cuda":
        return problem
    from harness.training import device_problem

    return device_problem(config, cluster, gpus)
