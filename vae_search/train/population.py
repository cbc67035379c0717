"""Population training: P run configs of one network shape trained in one process as one
stacked model (:mod:`vae_search.train.stacked`). Like :mod:`vae_search.train.loop` it knows
nothing of Optuna.

Each member is its single run, to float rounding (the tests hold it to 1e-5):

- it is built, seeded and restored from its checkpoint by the single-run code
  (``_fresh``/``_restore``), so a checkpoint of either trainer resumes in the other;
- its batches (order and dynamic binarisation) come from its own generator through its own
  :class:`~vae_search.train.batching.TensorBatcher`, and its reparameterisation noise from a
  generator holding the state that torch's global stream would have in its single run;
- β, free bits, learning rate, weight decay, gradient clip and seed are its own (Adam and the
  clip act per member, see :class:`~vae_search.train.stacked.StackedAdam`);
- after every epoch its parameters are copied into its own module and measured by the loop's
  own :func:`~vae_search.train.loop.epoch_metrics`; it then checkpoints, and its callback runs;
- its final figures are :func:`~vae_search.train.loop.final_figures`, with the validation IWAE
  bound of all members that finish together computed in one batched pass
  (:meth:`~vae_search.train.stacked.StackedVAE.iwae_nll`, each member's noise from its own
  generator as in its single run). It is computed only when ``eval.iwae_samples`` > 0, which
  a worker sets to 0 when the objective does not read it.

A member leaves the population when its callback raises (a pruned trial), when it fails (a
non-finite loss, :class:`~vae_search.errors.TrainingError` naming epoch and step) or when it
has run its epochs; its slot is dropped from the stacked tensors and the others go on.
``KeyboardInterrupt`` is not a member's failure: it stops the whole population.

Who can be stacked (:func:`stack_key`): members must share every setting that changes a tensor
shape or the data: data, network, latent size, prior kind and components, likelihood (and
whether σ is learned), batch size, device, threads, amp. Epoch counts may differ, and so may
the epoch a member resumes from.

Padding (a smaller latent size or fewer mixture components as a masked bigger member) is not
done. Exactness would need far more than a mask on the outputs: the member's initial weights
and its noise would be drawn in other shapes than in its single run (so the same seed gives
another model); the mixtures' float64 log-density and the mutual-information estimate would
need masked components at exactly -inf weight, and logsumexp's gradient over them is
exactly 0 only on finite inputs; and every diagnostic (KL per dimension, active units, unit
variances) would need a masked variant. Members of other shapes train in their own
populations, or alone.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from vae_search.config import RunConfig
from vae_search.errors import ConfigError
from vae_search.model import VAE
from vae_search.schedules import BetaSchedule
from vae_search.train.batching import TensorBatcher
from vae_search.train.loop import (
    Checkpoint,
    EpochCallback,
    EpochMetrics,
    RunResult,
    _fresh,
    _restore,
    _state,
    epoch_metrics,
    final_figures,
    resolve_device,
)
from vae_search.train.stacked import StackedAdam, StackedVAE, optimizer_steps, stacked_loss

log = logging.getLogger(__name__)

PopulationProgressFn = Callable[[int, int, int, int], None]  # (epoch, step, steps, members)


def stack_key(cfg: RunConfig) -> tuple[Any, ...]:
    """Configs with equal keys can train in one population (see the module docstring)."""
    m = cfg.model
    return (
        repr(cfg.data), m.arch, tuple(m.hidden) if m.arch == "mlp" else tuple(m.channels), m.activation,
        m.latent_dim, m.likelihood, m.learn_sigma, cfg.prior.kind,
        cfg.prior.components if cfg.prior.kind != "standard" else None,
        cfg.batch_size, cfg.device, cfg.threads, cfg.amp,
    )


def group_configs(cfgs: Sequence[RunConfig], max_size: int | None = None) -> list[list[int]]:
    """Indices of ``cfgs`` in stackable groups of at most ``max_size``, in first-seen order."""
    groups: dict[tuple[Any, ...], list[list[int]]] = {}
    for i, cfg in enumerate(cfgs):
        chunks = groups.setdefault(stack_key(cfg), [[]])
        if max_size is not None and len(chunks[-1]) >= max_size:
            chunks.append([])
        chunks[-1].append(i)
    return [chunk for chunks in groups.values() for chunk in chunks]


def stack_problem(cfg: RunConfig, shape: tuple[int, ...]) -> str | None:
    """Why models of ``cfg`` cannot be stacked (None: they can), found by one stacked forward
    and backward pass of two such models on a batch of two zeros (a module that does not work
    under ``vmap``, say)."""
    from vae_search.model import build_vae

    try:
        with torch.random.fork_rng(devices=[]):
            stack = StackedVAE([build_vae(cfg, shape), build_vae(cfg, shape)])
            x = torch.zeros(2, 2, *shape)
            log_px, kl_terms = stack.forward(x, torch.zeros(2, 2, cfg.model.latent_dim))
            (log_px.sum() + kl_terms.sum()).backward()
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return None


@dataclass
class MemberOutcome:
    """How one member ended: ``result`` when it ran all its epochs, else ``error`` (the
    exception its callback raised, or the :class:`TrainingError` of a non-finite loss), with
    the epochs it did run in ``history``."""

    config: RunConfig
    result: RunResult | None = None
    error: Exception | None = None
    history: list[EpochMetrics] = field(default_factory=list)


@dataclass
class _Member:
    index: int
    cfg: RunConfig
    model: VAE
    optimizer: torch.optim.Optimizer
    gen: torch.Generator
    noise: torch.Generator
    batcher: TensorBatcher
    schedule: BetaSchedule
    val_x: torch.Tensor
    checkpoint: Checkpoint | None
    on_epoch: EpochCallback | None
    history: list[EpochMetrics]
    start_epoch: int
    context: Callable[[], AbstractContextManager[Any]] = nullcontext

    @property
    def epoch(self) -> int:
        return len(self.history)


def _noise_generator(device: torch.device) -> torch.Generator:
    """A generator in the state the global stream has now: the member's single run draws its
    reparameterisation noise from the global stream (``randn_like``) from here on."""
    gen = torch.Generator(device=device)
    gen.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return gen


def _val_on(data: Any, n: int | None, device: torch.device, on_device: dict[Any, torch.Tensor]) -> torch.Tensor:
    """The first ``n`` validation examples on the device, one copy per ``n``."""
    key = ("val", n)
    if key not in on_device:
        on_device[key] = data.val[:n].to(device)
    return on_device[key]


def _member(i: int, cfg: RunConfig, data: Any, device: torch.device, checkpoint: Checkpoint | None,
            on_epoch: EpochCallback | None, on_device: dict[Any, torch.Tensor],
            context: Callable[[], AbstractContextManager[Any]]) -> _Member:
    history: list[EpochMetrics] = []
    model, optimizer, gen = _fresh(cfg, data.shape, device)
    if not _restore(checkpoint, cfg, model, optimizer, gen, history):
        model, optimizer, gen = _fresh(cfg, data.shape, device)
    return _Member(
        index=i, cfg=cfg, model=model, optimizer=optimizer, gen=gen, noise=_noise_generator(device),
        batcher=TensorBatcher(on_device["train"], cfg.batch_size, gen, binarize=cfg.data.binarize == "dynamic"),
        schedule=BetaSchedule(cfg.schedule, cfg.epochs),
        val_x=_val_on(data, cfg.eval.max_examples, device, on_device),
        checkpoint=checkpoint, on_epoch=on_epoch, history=history, start_epoch=len(history), context=context,
    )


def train_population(
    cfgs: Sequence[RunConfig],
    *,
    data: Any | None = None,
    on_epoch: Sequence[EpochCallback | None] | None = None,
    checkpoints: Sequence[Checkpoint | None] | None = None,
    progress: PopulationProgressFn | None = None,
    member_context: Callable[[int], AbstractContextManager[Any]] | None = None,
) -> list[MemberOutcome]:
    """Train ``cfgs`` (one :func:`stack_key`) together; one outcome per config, in order.

    Args:
        cfgs: the members' run configs.
        data: the :class:`vae_search.data.DataSplits` they share (loaded when None).
        on_epoch: per member, called with each of its epochs' metrics (restored epochs first,
            as in :func:`vae_search.train.train`); an exception raised there removes the member.
        checkpoints: per member, its per-epoch state store.
        progress: called after every stacked step with (epoch of the first member, step,
            steps per epoch, members training).
        member_context: ``member_context(i)`` is entered around all that is done for member
            ``i`` alone (its restore, its epochs' figures, checkpoint and callback, its final
            figures), so what is logged there can say whose it is (a worker: its trial).

    Raises:
        ConfigError: the configs cannot be stacked, or their data does not fit the likelihood.
    """
    if not cfgs:
        return []
    if len({stack_key(c) for c in cfgs}) > 1:
        raise ConfigError("train_population: the run configs differ in shape; group them with group_configs")
    cb = list(on_epoch) if on_epoch is not None else [None] * len(cfgs)
    ck = list(checkpoints) if checkpoints is not None else [None] * len(cfgs)
    first = cfgs[0]
    if data is None:
        from vae_search.data import load_data

        data = load_data(first.data)
    if first.model.likelihood == "bernoulli" and not data.binary_ok:
        raise ConfigError(f"model.likelihood: 'bernoulli' needs data in [0, 1], but {data.name} is not; "
                          "use likelihood: gaussian or rescale the data")
    if first.threads:
        torch.set_num_threads(first.threads)
    device = resolve_device(first.device)
    outcomes = [MemberOutcome(config=c) for c in cfgs]
    on_device: dict[Any, torch.Tensor] = {"train": data.train.to(device)}  # one copy for all members
    members = []
    for i, c in enumerate(cfgs):
        context = functools.partial(member_context, i) if member_context is not None else nullcontext
        with context():
            members.append(_member(i, c, data, device, ck[i], cb[i], on_device, context))
    for m in members:  # a new observer sees the restored epochs first, as in a single run
        _replay(m, outcomes)
    members = [m for m in members if outcomes[m.index].error is None]
    members = [m for m in members if not _finish_if_done(m, outcomes, data, device)]
    if members:
        _train(members, outcomes, data, device, progress)
    return outcomes


def _replay(m: _Member, outcomes: list[MemberOutcome]) -> None:
    with m.context():
        try:
            for h in m.history:
                if m.on_epoch is not None:
                    m.on_epoch(h)
        except Exception as e:
            outcomes[m.index].error, outcomes[m.index].history = e, m.history


def _finish_if_done(m: _Member, outcomes: list[MemberOutcome], data: Any, device: torch.device,
                    nll_iwae: float | None = None) -> bool:
    """Give a member that ran all its epochs its final figures (``nll_iwae``: its validation
    IWAE bound, when already computed); True when it has left."""
    if m.epoch < m.cfg.epochs:
        return False
    out = outcomes[m.index]
    out.history = m.history
    with m.context():
        try:
            result = RunResult(config=m.cfg, model=m.model, history=m.history, resumed_from=m.start_epoch)
            result.final = final_figures(m.cfg, m.model, m.val_x, m.history[-1], data, device, nll_iwae=nll_iwae)
            out.result = result
        except Exception as e:
            out.error = e
    return True


def _iwae_key(m: _Member) -> tuple[Any, ...]:
    e = m.cfg.eval
    return e.iwae_samples, e.iwae_chunk, e.iwae_max_examples, id(m.val_x)


def _batched_iwae(done: list[tuple[int, _Member]], stack: StackedVAE) -> dict[int, float]:
    """The validation IWAE bounds of the members (slot, member) that ran all their epochs, one
    batched pass per group of equal evaluation settings: member index -> its bound. A group
    whose batched pass fails is left out (its members compute theirs alone, and fail alone)."""
    groups: dict[tuple[Any, ...], list[tuple[int, _Member]]] = {}
    for slot, m in done:
        if m.cfg.eval.iwae_samples > 0:
            groups.setdefault(_iwae_key(m), []).append((slot, m))
    out: dict[int, float] = {}
    for (k, chunk, n, _), group in groups.items():
        try:
            figures = stack.iwae_nll([s for s, _ in group], group[0][1].val_x[:n], k=k, chunk=chunk,
                                     seeds=[m.cfg.seed for _, m in group])
        except Exception as e:  # noqa: BLE001 - the members' own passes name it
            log.info("population: batched IWAE bound failed (%s: %s); members compute theirs alone",
                     type(e).__name__, e)
            continue
        out.update({m.index: f for (_, m), f in zip(group, figures)})
    return out


def _train(members: list[_Member], outcomes: list[MemberOutcome], data: Any, device: torch.device,
           progress: PopulationProgressFn | None) -> None:
    stack = StackedVAE([m.model for m in members])
    adam = StackedAdam(stack, [m.cfg.optim.lr for m in members], [m.cfg.optim.weight_decay for m in members],
                       [m.cfg.optim.grad_clip for m in members], [optimizer_steps(m.optimizer) for m in members])
    for slot, m in enumerate(members):
        adam.load_member(slot, m.model, m.optimizer)
    first = members[0].cfg
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=first.amp and device.type == "cuda")
    steps = len(members[0].batcher)
    latent_dim = first.model.latent_dim
    log.info("population of %d members (%s, latent %d) on %s", len(members), first.model.arch, latent_dim, device)
    while members:
        t0 = time.perf_counter()
        losses = torch.empty(steps, len(members), device=device)
        batches = [iter(m.batcher) for m in members]
        free_bits = torch.tensor([m.cfg.schedule.free_bits for m in members], device=device)
        betas = [0.0] * len(members)
        for step in range(steps):
            betas = [m.schedule(m.epoch + step / steps) for m in members]
            x = torch.stack([next(b) for b in batches])
            eps = torch.stack([torch.randn((x.shape[1], latent_dim), generator=m.noise, device=device)
                               for m in members])
            with autocast:
                log_px, kl_terms = stack.forward(x, eps)
            loss = stacked_loss(log_px, kl_terms, torch.tensor(betas, device=device), free_bits, latent_dim)
            loss.sum().backward()  # the members' parameters are disjoint: each gets its own gradient
            adam.step()
            losses[step] = loss.detach()
            if progress is not None:
                progress(members[0].epoch + 1, step + 1, steps, len(members))
        train_seconds = time.perf_counter() - t0
        staying, done = [], []
        for slot, m in enumerate(members):
            state = _end_epoch(m, slot, stack, adam, losses[:, slot], betas[slot], train_seconds, outcomes,
                               device)
            if state == "train":
                staying.append(slot)
            elif state == "done":
                done.append((slot, m))
        if done:  # the final figures of all members that ran their epochs, in one batched pass
            iwae = _batched_iwae(done, stack)
            for _, m in done:
                _finish_if_done(m, outcomes, data, device, nll_iwae=iwae.get(m.index))
        if len(staying) < len(members):
            members = [members[s] for s in staying]
            if members:
                stack.keep(staying)
                adam.keep(staying)
                log.info("population: %d member(s) go on", len(members))


def _end_epoch(m: _Member, slot: int, stack: StackedVAE, adam: StackedAdam, losses: torch.Tensor, beta: float,
               train_seconds: float, outcomes: list[MemberOutcome], device: torch.device) -> str:
    """Measure, checkpoint and report member ``m``'s epoch: "train" when it goes on, "done"
    when it ran all its epochs (its final figures are still to come), "left" when it failed."""
    with m.context():
        return _epoch_of(m, slot, stack, adam, losses, beta, train_seconds, outcomes[m.index], device)


def _epoch_of(m: _Member, slot: int, stack: StackedVAE, adam: StackedAdam, losses: torch.Tensor, beta: float,
              train_seconds: float, out: MemberOutcome, device: torch.device) -> str:
    try:
        stack.copy_into(slot, m.model)
        t0 = time.perf_counter() - train_seconds  # its epoch: the shared steps and its own validation
        metrics = epoch_metrics(m.cfg, m.model, m.val_x, losses, m.epoch + 1, beta, t0, train_seconds)
        m.history.append(metrics)
        if m.checkpoint is not None:
            adam.member_state(slot, m.model, m.optimizer)
            state = _state(m.cfg, m.model, m.optimizer, m.gen, m.history)
            state["rng"]["cuda" if device.type == "cuda" else "torch"] = m.noise.get_state()
            m.checkpoint.save(state)
        if m.on_epoch is not None:
            m.on_epoch(metrics)
    except Exception as e:
        out.error, out.history = e, m.history
        log.info("population: member %d leaves after epoch %d (%s: %s)", m.index, len(m.history),
                 type(e).__name__, e)
        return "left"
    return "done" if m.epoch >= m.cfg.epochs else "train"
