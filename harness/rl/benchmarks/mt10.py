"""MT10 (Yu et al. 2019) in metaworld 3: the ten v3 tasks of ``metaworld.MT10``, in its order."""
from harness.rl.benchmarks import register
from harness.rl.benchmarks._base import Benchmark


@register("mt10", version="1")
class MT10(Benchmark):
    name = "mt10"
    env_id = "Meta-World/MT10"
    tasks = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
             "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3")
