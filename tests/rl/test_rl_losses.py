"""Per-task losses and gradients of the RL family, and how each multi-task optimizer turns them
into an update: against hand computations, the multi-task cores themselves, and each other."""
import numpy as np
import pytest
import torch

from harness.multitask.optimizers import OPTIMIZERS
from harness.rl.buffer import ReplayBuffer
from harness.rl.combine import PLAIN, TaskCombiner
from harness.rl.config import alpha_uses_method, optimizer_options, resolved
from harness.rl.networks import Actor, Critic
from harness.rl.sac import SAC
from harness.rl.task_gradients import METHODS, per_task_gradients
from harness.rl.task_losses import split_by_task

CPU = torch.device("cpu")


def tasks_with_a_gap(n=60, tasks=6, missing=2, seed=0):
    task = torch.randint(0, tasks, (n,), generator=torch.Generator().manual_seed(seed))
    task[task == missing] = missing + 1
    return task


def test_per_task_losses_are_sums_by_task_index_divided_by_counts_and_missing_tasks_dropped():
    task = tasks_with_a_gap()
    losses = torch.randn(len(task), dtype=torch.float64)
    split = split_by_task(task)
    present = sorted(set(task.tolist()))
    assert split.present.tolist() == present and 2 not in present
    expected = [losses.numpy()[task.numpy() == t].sum() / (task.numpy() == t).sum() for t in present]
    assert np.allclose(split.means(losses).numpy(), expected)
    assert float((losses * split.sample_weights(torch.float64)).sum()) == pytest.approx(sum(expected))
    slots, n_max = split.padded_slots()
    assert n_max == int(split.counts.max()) and len(set(slots.tolist())) == len(task)
    assert all(int(slots[b]) // n_max == int(split.position[b]) for b in range(len(task)))


def critic_loss(critic, obs, action, target, tape):
    q1, q2 = critic(obs, action, tape)
    return (q1 - target) ** 2 + (q2 - target) ** 2


@pytest.mark.parametrize("role", ["critic", "actor"])
def test_batched_per_task_gradients_equal_one_backward_pass_per_task_on_its_own_samples(role):
    torch.manual_seed(0)
    task = tasks_with_a_gap()
    obs, action, target = torch.randn(len(task), 7), torch.rand(len(task), 3) * 2 - 1, torch.randn(len(task))
    actor, critic = Actor(7, 3, 12, 2), Critic(7, 3, 12, 2)
    params = list((critic if role == "critic" else actor).parameters())

    def per_sample(rows=slice(None), tape=None):
        if role == "critic":
            return critic_loss(critic, obs[rows], action[rows], target[rows], tape)
        pi, log_pi = actor(obs[rows], torch.Generator().manual_seed(5), tape)  # the same noise rows every call
        return 0.2 * log_pi - torch.min(*critic(obs[rows], pi))

    split = split_by_task(task)
    by_hand = []
    for t in split.present.tolist():  # each task's mean loss, computed from its samples alone
        rows = (task == t).nonzero().squeeze(1)
        if role == "actor":  # the noise of sample b must be the batch's row b
            loss = per_sample()[rows].mean()
        else:
            loss = per_sample(rows).mean()
        by_hand.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    by_hand = torch.stack(by_hand)
    for method in METHODS:
        tape = []
        grads = per_task_gradients(per_sample(tape=tape), split, params, tape, method)
        assert grads.shape == by_hand.shape
        assert torch.allclose(grads, by_hand, atol=1e-5, rtol=1e-4), method


def test_segment_gradients_refuse_parameters_outside_the_tape():
    critic = Critic(5, 2, 8, 1)
    task = torch.tensor([0, 1, 1, 0])
    tape = []
    loss = critic_loss(critic, torch.randn(4, 5), torch.randn(4, 2), torch.zeros(4), tape)
    with pytest.raises(ValueError, match="no taped linear layer"):
        per_task_gradients(loss, split_by_task(task), list(critic.parameters()) + [torch.nn.Parameter(torch.ones(1))],
                           tape, "segment")


def gradient_of(combiner, per_sample, split, params, tape=None, seed=0):
    for p in params:
        p.grad = None
    combiner.set_gradients(per_sample, split, params, tape, torch.Generator().manual_seed(seed))
    return torch.cat([p.grad.reshape(-1) for p in params])


def setup_critic(n=80, tasks=5, seed=1):
    torch.manual_seed(seed)
    critic = Critic(6, 2, 10, 1)
    task = torch.randint(0, tasks, (n,), generator=torch.Generator().manual_seed(seed))
    obs, action, target = torch.randn(n, 6), torch.rand(n, 2), torch.randn(n) * 3
    tape = []
    return critic, split_by_task(task), critic_loss(critic, obs, action, target, tape), tape


def flat_grad(loss, params):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


def test_unitary_is_the_plain_mean_over_the_mixed_batch():
    critic, split, loss, tape = setup_critic()  # the same numbers at every call: a fresh graph for each use
    expected = flat_grad(loss.mean(), list(critic.parameters()))
    critic, split, loss, tape = setup_critic()
    core = flat_grad(split.means(loss).sum(), list(critic.parameters()))  # the multi-task core's unitary
    critic, split, loss, tape = setup_critic()
    got = gradient_of(TaskCombiner("unitary", 5, {}, 1e-3, CPU), loss, split, list(critic.parameters()), tape)
    assert torch.allclose(got, expected) and not torch.allclose(got, core)


def test_pcgrad_is_the_mean_of_the_cores_projected_gradients_and_mgda_combines_normalised_ones():
    critic, split, loss, tape = setup_critic()
    grads = per_task_gradients(loss, split, list(critic.parameters()), tape, "loop")
    expected = OPTIMIZERS.get("pcgrad")(5).project(grads, torch.Generator().manual_seed(3)).mean(0)
    critic, split, loss, tape = setup_critic()
    got = gradient_of(TaskCombiner("pcgrad", 5, {}, 1e-3, CPU), loss, split, list(critic.parameters()), tape, 3)
    assert torch.allclose(got, expected, atol=1e-6)
    unit = grads / grads.norm(dim=1, keepdim=True)
    expected = torch.tensordot(OPTIMIZERS.get("mgda_ub")(5, normalization="l2").task_weights(grads).float(), unit, dims=1)
    critic, split, loss, tape = setup_critic()
    combiner = TaskCombiner("mgda_ub", 5, {"normalization": "l2"}, 1e-3, CPU)
    assert torch.allclose(gradient_of(combiner, loss, split, list(critic.parameters()), tape), expected, atol=1e-6)


def test_loss_space_methods_take_the_cores_objective_of_the_per_task_means():
    weights = OPTIMIZERS.get("rlw_dirichlet")(5).weights(None, torch.Generator().manual_seed(4))
    assert weights.sum() == pytest.approx(5.0)
    critic, split, loss, tape = setup_critic()
    expected = flat_grad((weights * split.means(loss)).sum(), list(critic.parameters()))
    critic, split, loss, tape = setup_critic()
    got = gradient_of(TaskCombiner("rlw_dirichlet", 5, {}, 1e-3, CPU), loss, split, list(critic.parameters()), tape, 4)
    assert torch.allclose(got, expected, atol=1e-6)


def test_a_batch_missing_tasks_runs_the_stateless_core_for_the_tasks_present():
    critic, split, loss, tape = setup_critic(tasks=3)  # tasks 0, 1, 2 of 5: tasks 3 and 4 are missing
    grads = per_task_gradients(loss, split, list(critic.parameters()), tape, "loop")
    expected = OPTIMIZERS.get("imtl")(3, learn_scales=False).combine(grads)
    critic, split, loss, tape = setup_critic(tasks=3)
    combiner = TaskCombiner("imtl", 5, {"learn_scales": False}, 1e-3, CPU)
    got = gradient_of(combiner, loss, split, list(critic.parameters()), tape)
    assert combiner._by_count[3].num_tasks == 3
    assert torch.allclose(got, expected, atol=1e-5)
    # a stateful optimizer keeps its T tasks: the missing ones enter with loss 0 and gradient 0
    critic, split, loss, tape = setup_critic(tasks=3)
    stateful = TaskCombiner("uncertainty", 5, {}, 1e-3, CPU)
    gradient_of(stateful, loss, split, list(critic.parameters()), tape)
    assert stateful._by_count == {5: stateful.full}
    log_variance_grad = stateful.full.log_variances.grad
    assert torch.allclose(log_variance_grad[3:], torch.ones(2))  # d(exp(-s) * 0 + s)/ds


def test_the_temperature_gets_a_plain_gradient_except_with_pcgrad():
    gap = torch.tensor([3.0, -1.0, 2.0, -4.0, 0.5, 1.5])
    task = torch.tensor([0, 1, 1, 2, 2, 0])
    split = split_by_task(task)
    log_alpha = torch.nn.Parameter(torch.tensor([0.3]))

    def alpha_loss():
        return log_alpha.exp() * gap

    plain = gradient_of(TaskCombiner(PLAIN, 3, {}, 1e-3, CPU), alpha_loss(), split, [log_alpha])
    assert torch.allclose(plain, (log_alpha.exp() * gap).mean().detach().reshape(1))
    # pcgrad on per-task scalars: a task conflicting with another is projected to 0
    per_task = (log_alpha.exp() * split.means(gap)).detach()  # d(alpha * mean gap) / d log_alpha
    assert (per_task > 0).any() and (per_task < 0).any()
    through = gradient_of(TaskCombiner("pcgrad", 3, {}, 1e-3, CPU), alpha_loss(), split, [log_alpha], None, 7)
    expected = OPTIMIZERS.get("pcgrad")(3).project(per_task[:, None], torch.Generator().manual_seed(7)).mean()
    assert torch.allclose(through, expected.reshape(1)) and not torch.allclose(through, plain)
    for method, expected_through in (("pcgrad", True), ("mgda_ub", False), ("rlw_normal", False), ("unitary", False)):
        config = resolved({"dataset": "mt10", "method": method, "seed": 0})
        assert alpha_uses_method(config) is expected_through
    assert alpha_uses_method(resolved({"dataset": "mt10", "method": "mgda_ub", "seed": 0, "alpha_uses_method": True}))


def filled_buffer(tasks=10, rows=30, seed=0):
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(rows * tasks, 39, 4, tasks, CPU)
    for _ in range(rows):
        buffer.add(rng.normal(size=(tasks, 39)), rng.uniform(-1, 1, (tasks, 4)), rng.gamma(2.0, size=tasks),
                   rng.normal(size=(tasks, 39)), np.ones(tasks), np.arange(tasks))
    return buffer, rng


@pytest.mark.parametrize("method", OPTIMIZERS.names())
def test_every_optimizer_runs_sac_updates_including_batches_that_miss_tasks(method):
    config = resolved({"dataset": "mt10", "method": method, "seed": 0, "hidden_dim": 16, "hidden_layers": 2,
                       "clip_targets": True})
    agent = SAC(39, 4, 10, config, CPU, torch.Generator().manual_seed(0), optimizer_options(config),
                alpha_uses_method(config))
    buffer, rng = filled_buffer()
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in (("actor", agent.actor), ("critic", agent.critic))}
    noise, generator = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    for batch_size in (64, 6, 64):  # 6 transitions cannot cover 10 tasks
        agent.update(buffer.sample(batch_size, rng, True), noise, generator)
    for name, net in (("actor", agent.actor), ("critic", agent.critic)):
        after = list(net.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before[name], after)), f"{method}: the {name} did not move"
        assert all(torch.isfinite(p).all() for p in after)
    assert torch.isfinite(agent.log_alpha).all()
    assert set(agent.losses_summary()) == {"critic", "actor", "alpha"}
