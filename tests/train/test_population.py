"""Population training: each member of a stacked population gives the figures of its own
single run (train/loop.py, the second path to the same numbers); members leave when pruned or
failed without changing the others; a member's checkpoint resumes alone or in a population."""

from __future__ import annotations

import io
import math

import pytest
import torch

from tests.conftest import small_config
from vae_search.data import load_data
from vae_search.errors import ConfigError, TrainingError
from vae_search.train import train
from vae_search.train.population import group_configs, stack_key, stack_problem, train_population

FIELDS = ("beta", "train_loss", "elbo", "recon", "kl", "mutual_info")
VECTORS = ("kl_per_dim", "unit_variance")


class MemoryCheckpoint:
    """Serialised at once, as the artifact-store checkpoint is (a state holds live tensors)."""

    def __init__(self):
        self.blob: bytes | None = None

    @property
    def state(self):
        return None if self.blob is None else torch.load(io.BytesIO(self.blob), weights_only=True)

    def load(self):
        return self.state

    def save(self, state):
        buf = io.BytesIO()
        torch.save(state, buf)
        self.blob = buf.getvalue()


class Stop(Exception):
    """What a caller's epoch callback raises to take a member out (a pruned trial)."""


def members(prior: str = "standard", binarize: str = "none", arch: str = "mlp"):
    """Four configs of one shape that differ in β, schedule kind and rate, free bits, learning
    rate, weight decay, gradient clip and seed."""
    common = {"prior": {"kind": prior, "components": 3}, "data": {"name": "shapes", "size": 1200,
                                                                   "image_size": 16, "binarize": binarize},
              "model": {"arch": arch, "hidden": [64], "channels": [8, 16], "latent_dim": 4}}
    return [
        small_config(schedule={"kind": "linear", "beta": 1.0, "rate": 0.5}, optim={"lr": 1e-3}, seed=0, **common),
        small_config(schedule={"kind": "constant", "beta": 4.0, "free_bits": 0.25}, optim={"lr": 3e-3},
                     seed=1, **common),
        small_config(schedule={"kind": "cyclical", "beta": 2.0, "cycles": 2}, seed=2,
                     optim={"lr": 5e-4, "grad_clip": 5.0, "weight_decay": 1e-4}, **common),
        small_config(schedule={"kind": "sigmoid", "beta": 0.5, "midpoint": 1.0, "steepness": 3.0},
                     optim={"lr": 2e-3}, seed=3, **common),
    ]


def assert_same_epochs(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.epoch == w.epoch and g.active_units == w.active_units
        for k in FIELDS:
            assert getattr(g, k) == pytest.approx(getattr(w, k), abs=1e-5, rel=1e-5), (g.epoch, k)
        for k in VECTORS:
            assert getattr(g, k) == pytest.approx(getattr(w, k), abs=1e-5, rel=1e-5), (g.epoch, k)


@pytest.mark.parametrize(("prior", "binarize", "arch"), [
    ("standard", "dynamic", "mlp"), ("mog", "none", "mlp"), ("vamp", "none", "mlp"), ("standard", "none", "conv"),
])
def test_each_member_equals_its_single_run(prior, binarize, arch):
    cfgs = members(prior, binarize, arch)
    data = load_data(cfgs[0].data)
    outcomes = train_population(cfgs, data=data)
    for cfg, out in zip(cfgs, outcomes):
        single = train(cfg, data=data)
        # every epoch's figures of the member are those of its own single run, to 1e-5
        assert out.error is None
        assert_same_epochs(out.result.history, single.history)
        # and so are the final figures, the IWAE bound included
        assert out.result.final["nll_iwae"] == pytest.approx(single.final["nll_iwae"], abs=1e-4, rel=1e-5)
    # the members really differ: the population did not train one model four times
    assert len({round(o.result.history[-1].elbo, 3) for o in outcomes}) == 4


def test_a_member_stopped_at_epoch_2_leaves_and_the_others_are_unchanged():
    cfgs = members()
    data = load_data(cfgs[0].data)
    alone = train_population(cfgs, data=data)

    def prune_at_2(m):
        if m.epoch == 2:
            raise Stop("pruned at epoch 2")

    seen: list[list[int]] = [[] for _ in cfgs]
    callbacks = [lambda m, i=i: seen[i].append(m.epoch) for i in range(len(cfgs))]
    callbacks[1] = lambda m: (seen[1].append(m.epoch), prune_at_2(m))
    outcomes = train_population(cfgs, data=data, on_epoch=callbacks)
    # the stopped member carries its callback's exception and the two epochs it ran
    assert isinstance(outcomes[1].error, Stop) and outcomes[1].result is None
    assert [h.epoch for h in outcomes[1].history] == [1, 2] and seen[1] == [1, 2]
    assert_same_epochs(outcomes[1].history, alone[1].result.history[:2])
    # the others ran all their epochs with exactly the figures they had with it in the population
    for i in (0, 2, 3):
        assert seen[i] == [1, 2, 3]
        assert_same_epochs(outcomes[i].result.history, alone[i].result.history)


def test_a_nan_member_fails_with_its_reason_and_the_others_complete():
    cfgs = members()
    cfgs[2] = cfgs[2].replace(optim=cfgs[2].optim.__class__(lr=1e30))  # blows up to inf/NaN at once
    data = load_data(cfgs[0].data)
    outcomes = train_population(cfgs, data=data)
    single = train_population([c for i, c in enumerate(cfgs) if i != 2], data=data)
    err = outcomes[2].error
    # the diverging member fails as its single run would: a TrainingError naming epoch and step
    assert isinstance(err, TrainingError) and "not finite" in str(err)
    with pytest.raises(TrainingError) as alone:
        train(cfgs[2], data=data)
    assert str(err) == str(alone.value)
    # the others complete with the figures they have without it
    for out, ref in zip([outcomes[i] for i in (0, 1, 3)], single):
        assert out.error is None
        assert_same_epochs(out.result.history, ref.result.history)
        assert all(math.isfinite(h.elbo) for h in out.result.history)


def test_a_member_checkpoint_resumes_alone_and_in_a_new_population():
    cfgs = members()
    data = load_data(cfgs[0].data)
    straight = [train(c, data=data) for c in cfgs[:2]]
    ckpts = [MemoryCheckpoint(), MemoryCheckpoint()]

    def die_after(n):
        def cb(m):
            if m.epoch == n:
                raise Stop("killed")
        return cb

    # both members leave after epochs 1 and 2 with their checkpoints written
    train_population(cfgs[:2], data=data, on_epoch=[die_after(1), die_after(2)], checkpoints=ckpts)
    assert ckpts[0].state["epoch"] == 1 and ckpts[1].state["epoch"] == 2
    # member 0 resumes alone through the single-run trainer: the uninterrupted run's figures
    saved = ckpts[0].blob
    resumed = train(cfgs[0], data=data, checkpoint=ckpts[0])
    assert resumed.resumed_from == 1
    assert_same_epochs(resumed.history, straight[0].history)
    # both resume together in a new population, from different epochs
    ckpts[0].blob = saved
    again = train_population(cfgs[:2], data=data, checkpoints=ckpts)
    for out, ref, start in zip(again, straight, (1, 2)):
        assert out.result.resumed_from == start
        assert_same_epochs(out.result.history, ref.history)


def test_a_single_run_checkpoint_resumes_in_a_population():
    cfg = members()[1]
    data = load_data(cfg.data)
    straight = train(cfg, data=data)
    ckpt = MemoryCheckpoint()
    with pytest.raises(Stop):
        train(cfg, data=data, checkpoint=ckpt, on_epoch=lambda m: (_ for _ in ()).throw(Stop()) if m.epoch == 1 else None)
    [out] = train_population([cfg], data=data, checkpoints=[ckpt])
    assert out.result.resumed_from == 1
    assert_same_epochs(out.result.history, straight.history)


def test_grouping_follows_tensor_shapes():
    a = small_config()
    b = small_config(seed=5, schedule={"kind": "constant", "beta": 3.0}, optim={"lr": 0.01})
    c = small_config(model={"hidden": [64], "latent_dim": 5})
    d = small_config(prior={"kind": "mog", "components": 3})
    # β, schedule, lr and seed do not change a shape; latent size and prior do
    assert stack_key(a) == stack_key(b)
    assert stack_key(a) != stack_key(c) and stack_key(a) != stack_key(d)
    assert group_configs([a, c, b, d, a], max_size=2) == [[0, 2], [4], [1], [3]]
    with pytest.raises(ConfigError, match="differ in shape"):
        train_population([a, c])


def test_a_model_that_does_not_work_under_vmap_is_named(monkeypatch):
    from vae_search.model.networks import MLPEncoder

    # a mixture prior takes the vmapped forward (the native one never calls the encoder module)
    cfg = small_config(prior={"kind": "mog", "components": 3})
    # the built-in networks stack
    assert stack_problem(cfg, (1, 16, 16)) is None and stack_problem(small_config(), (1, 16, 16)) is None

    def data_dependent(self, x):  # Python control flow on a tensor's value: vmap refuses it
        if float(x.sum()) > 0:
            pass
        mu, logvar = self.net(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar

    monkeypatch.setattr(MLPEncoder, "forward", data_dependent)
    problem = stack_problem(cfg, (1, 16, 16))
    assert problem is not None and "RuntimeError" in problem


def test_the_stacked_step_is_one_batched_pass():
    """The population's parameters are stacked tensors: one leading slot per member, and a
    member that leaves takes its slot with it."""
    from vae_search.model import build_vae
    from vae_search.train.stacked import StackedVAE

    models = [build_vae(c, (1, 16, 16)) for c in members()]
    stack = StackedVAE(models)
    w = stack.params["encoder.net.0.weight"]
    assert w.shape[0] == 4 and torch.equal(w[2], models[2].encoder.net[0].weight)
    stack.keep([0, 3])
    assert len(stack) == 2 and torch.equal(stack.params["encoder.net.0.weight"][1], models[3].encoder.net[0].weight)


def _built(prior: str = "standard", arch: str = "mlp", likelihood: str = "bernoulli", learn_sigma: bool = False):
    from vae_search.model import build_vae

    cfgs = [c.replace(model=c.model.__class__(**{**c.model.__dict__, "likelihood": likelihood,
                                                 "learn_sigma": learn_sigma}))
            for c in members(prior, "none", arch)]
    models = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        models.append(build_vae(c, (1, 16, 16)))
    return cfgs, models


@pytest.mark.parametrize(("prior", "arch", "likelihood", "learn_sigma", "native"), [
    ("standard", "mlp", "bernoulli", False, True), ("standard", "mlp", "gaussian", False, True),
    ("standard", "mlp", "gaussian", True, False), ("mog", "mlp", "bernoulli", False, False),
    ("standard", "conv", "bernoulli", False, False),
])
def test_the_stacked_forward_is_each_members_own(prior, arch, likelihood, learn_sigma, native):
    """The native (baddbmm) forward where it applies, and the vmapped one, both give each
    member's own forward with the same noise (the members' modules, one at a time)."""
    from vae_search.train.stacked import StackedVAE, _Step

    _, models = _built(prior, arch, likelihood, learn_sigma)
    stack = StackedVAE(models)
    assert stack.native is native
    x = torch.rand(4, 6, 1, 16, 16, generator=torch.Generator().manual_seed(0)).bernoulli()
    eps = torch.randn(4, 6, 4, generator=torch.Generator().manual_seed(1))
    log_px, kl = stack.forward(x, eps)
    for i, m in enumerate(models):
        own_px, own_kl = _Step(m)(x[i], eps[i])
        assert torch.allclose(log_px[i], own_px, rtol=1e-5, atol=1e-4)
        assert torch.allclose(kl[i], own_kl, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("prior", "arch"), [("standard", "mlp"), ("mog", "mlp"), ("vamp", "mlp"),
                                             ("standard", "conv")])
@pytest.mark.parametrize(("k", "chunk"), [(7, None), (7, 100_000), (7, 7 * 8 * 3), (7, 7 * 8 * 2), (7, 7 * 2),
                                          (7, 5)])
def test_the_batched_final_iwae_is_each_members_own(prior, arch, k, chunk):
    """All members' IWAE bounds in one batched pass equal metrics.iwae_nll of each member's
    own module with its own seed, for every chunking: all members and examples in one pass;
    all members, examples split (8 + 5); members split 2 + 1 with examples split; blocks of 2
    examples one member at a time; more samples than the chunk (member by member)."""
    from vae_search.metrics import iwae_nll
    from vae_search.train.stacked import StackedVAE

    cfgs, models = _built(prior, arch)
    x = torch.rand(13, 1, 16, 16, generator=torch.Generator().manual_seed(2)).bernoulli()
    stack = StackedVAE(models)
    slots = [3, 0, 2]  # any subset, in any order
    got = stack.iwae_nll(slots, x, k=k, chunk=chunk, seeds=[cfgs[s].seed for s in slots])
    want = [iwae_nll(models[s], x, k=k, chunk=chunk, seed=cfgs[s].seed) for s in slots]
    assert got == pytest.approx(want, abs=1e-4, rel=1e-6)
    assert len({round(w, 3) for w in want}) == 3  # the members really differ


def test_members_finishing_at_different_epochs_get_their_own_final_figures():
    """The batched final IWAE bound runs once per epoch end for the members finishing there
    (here 1 of them after epoch 2, 2 after epoch 3): each equals its single run."""
    cfgs = members()[:3]
    cfgs[1] = cfgs[1].replace(epochs=2)
    data = load_data(cfgs[0].data)
    outcomes = train_population(cfgs, data=data)
    for cfg, out in zip(cfgs, outcomes):
        single = train(cfg, data=data)
        assert out.error is None and len(out.result.history) == cfg.epochs
        assert_same_epochs(out.result.history, single.history)
        assert out.result.final["nll_iwae"] == pytest.approx(single.final["nll_iwae"], abs=1e-4, rel=1e-5)
        assert out.result.final["epochs"] == single.final["epochs"] == cfg.epochs
