"""The training loop: one :class:`RunConfig` in, a trained VAE and its diagnostics out.

It knows nothing of Optuna. The search layer watches it through ``on_epoch`` (every validation
metric after every epoch; an exception raised there stops training and propagates) and makes it
resumable through a :class:`Checkpoint` (saved after every epoch, loaded at the start).

Hot path: batches are gathers from a tensor on the device (:class:`TensorBatcher`); β is a host
float computed per step; each step's loss is written into a preallocated device tensor, so there
is no host sync inside an epoch. At the epoch's end one check finds the first non-finite loss
and stops the run with its epoch and step.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from vae_search.config import RunConfig
from vae_search.data.splits import derive_seed
from vae_search.errors import ConfigError, TrainingError
from vae_search.metrics import Evaluation, evaluate, iwae_nll
from vae_search.model import VAE, build_vae, vae_loss
from vae_search.model.factory import SequenceInfo, record_factory_hash
from vae_search.model.likelihoods import Categorical
from vae_search.schedules import BetaSchedule
from vae_search.train.batching import TensorBatcher

log = logging.getLogger(__name__)


@dataclass
class EpochMetrics:
    """Everything measured after one epoch; ``epoch`` counts finished epochs from 1."""

    epoch: int
    beta: float
    train_loss: float
    seconds: float  # the whole epoch: training steps and validation metrics
    train_seconds: float  # the training steps alone
    elbo: float
    recon: float
    kl: float
    kl_per_dim: list[float]
    active_units: int
    unit_variance: list[float]
    mutual_info: float

    @classmethod
    def from_eval(
        cls, epoch: int, beta: float, train_loss: float, seconds: float, train_seconds: float, ev: Evaluation
    ) -> EpochMetrics:
        return cls(epoch=epoch, beta=beta, train_loss=train_loss, seconds=seconds, train_seconds=train_seconds,
                   **ev.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    """A finished run: the model, its per-epoch history and the final figures."""

    config: RunConfig
    model: VAE
    history: list[EpochMetrics]
    final: dict[str, Any] = field(default_factory=dict)
    resumed_from: int = 0  # epochs restored from a checkpoint (0: a fresh start)

    def metrics(self) -> dict[str, Any]:
        """What ``metrics.json`` holds."""
        return {"final": self.final, "history": [h.to_dict() for h in self.history]}


class CheckpointError(Exception):
    """A checkpoint exists but cannot be read (lost, truncated, corrupt): the run starts over."""


class Checkpoint(Protocol):
    """Where a run keeps its per-epoch state; ``load`` returns None when there is none and
    raises :class:`CheckpointError` when the one there cannot be read."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


EpochCallback = Callable[[EpochMetrics], None]
ProgressFn = Callable[[int, int, int], None]  # (epoch, step, steps per epoch), 1-based


def device_problem(name: str) -> str | None:
    """Why device ``name`` cannot be used here (None: it can)."""
    if name == "auto" or not name.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return "CUDA is not available here; use auto or cpu"
    index = torch.device(name).index
    if index is not None and index >= torch.cuda.device_count():
        return (f"only {torch.cuda.device_count()} CUDA device(s) are visible here "
                "(CUDA_VISIBLE_DEVICES counts from 0); use cuda or a lower index")
    return None


def resolve_device(name: str) -> torch.device:
    """``auto`` takes CUDA when present; a CUDA device that is not here is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    problem = device_problem(name)
    if problem is not None:
        raise ConfigError(f"device: {name!r} asked for, but {problem}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    cfg: RunConfig,
    *,
    data: Any | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint: Checkpoint | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Train the VAE ``cfg`` describes and evaluate it.

    Args:
        cfg: the run.
        data: a :class:`vae_search.data.DataSplits` (loaded from ``cfg.data`` when None).
        on_epoch: called with each epoch's metrics; when resuming, it is first called again
            for every restored epoch so a new observer sees the whole history.
        checkpoint: per-epoch state store for resuming.
        progress: called after every training step.

    Raises:
        TrainingError: a non-finite loss (naming epoch and step).
        DataError, ConfigError: bad data or config.
    """
    if data is None:
        from vae_search.data import load_data

        data = load_data(cfg.data)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if cfg.model.likelihood == "bernoulli" and not data.binary_ok:
        raise ConfigError(
            f"model.likelihood: 'bernoulli' needs data in [0, 1], but {data.name} is not; "
            "use likelihood: gaussian or rescale the data"
        )
    train_x = data.train.to(device)
    val_x = data.val[: cfg.eval.max_examples].to(device)
    history: list[EpochMetrics] = []
    cfg = record_factory_hash(cfg)
    sequence = sequence_info(data)
    model, optimizer, gen = _fresh(cfg, data.shape, device, sequence)
    if not _restore(checkpoint, cfg, model, optimizer, gen, history):
        model, optimizer, gen = _fresh(cfg, data.shape, device, sequence)  # undo a partial restore
    start_epoch = len(history)
    batcher = TensorBatcher(train_x, cfg.batch_size, gen, binarize=cfg.data.binarize == "dynamic")
    steps = len(batcher)
    schedule = BetaSchedule(cfg.schedule, cfg.epochs)
    cuda = device.type == "cuda"
    if cfg.compile and cuda:
        # a fresh cache per run: in a search every trial is another model, and Dynamo falls back
        # to eager for good after recompile_limit (8) differing models in one process
        torch.compiler.reset()
        forward = torch.compile(model)
    else:
        forward = model
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp and cuda)
    for h in history:
        if on_epoch is not None:
            on_epoch(h)

    losses = torch.empty(steps, device=device)
    params = [p for p in model.parameters()]
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        beta = schedule(epoch)
        for step, x in enumerate(batcher):
            beta = schedule(epoch + step / steps)
            with autocast:
                out = forward(x)
            loss = vae_loss(out, beta, cfg.schedule.free_bits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            optimizer.step()
            losses[step] = loss.detach()
            if progress is not None:
                progress(epoch + 1, step + 1, steps)
        metrics = epoch_metrics(cfg, model, val_x, losses, epoch + 1, beta, t0)
        history.append(metrics)
        if checkpoint is not None:
            checkpoint.save(_state(cfg, model, optimizer, gen, history))
        if on_epoch is not None:
            on_epoch(metrics)

    result = RunResult(config=cfg, model=model, history=history, resumed_from=start_epoch)
    result.final = final_figures(cfg, model, val_x, history[-1], data, device)
    return result


def epoch_metrics(cfg: RunConfig, model: VAE, val_x: torch.Tensor, losses: torch.Tensor, epoch: int, beta: float,
                  t0: float, train_seconds: float | None = None) -> EpochMetrics:
    """The metrics of finished epoch ``epoch`` (from 1): its step ``losses`` are checked for a
    non-finite value and averaged (the epoch's one host sync), then the validation figures are
    measured; ``t0`` is when the epoch began (``time.perf_counter``), and ``train_seconds``
    (None: from ``t0`` to the sync) the time of its training steps.

    Raises:
        TrainingError: a non-finite step loss or validation ELBO.
    """
    _check_finite(losses, epoch, beta)
    train_loss = float(losses.mean())
    if train_seconds is None:
        train_seconds = time.perf_counter() - t0
    ev = evaluate(model, val_x, batch_size=cfg.eval.batch_size, au_threshold=cfg.eval.au_threshold, seed=cfg.seed)
    if not np.isfinite(ev.elbo):
        raise TrainingError(
            f"validation ELBO is not finite after epoch {epoch} (β={beta:.4g}); "
            "lower optim.lr or set optim.grad_clip",
            epoch=epoch,
        )
    metrics = EpochMetrics.from_eval(epoch, beta, train_loss, time.perf_counter() - t0, train_seconds, ev)
    log.info(
        "epoch %d/%d  β=%.3g  -elbo=%.2f  recon=%.2f  kl=%.2f  au=%d/%d  mi=%.2f  (%.1fs)",
        epoch, cfg.epochs, beta, ev.elbo, ev.recon, ev.kl, ev.active_units, model.latent_dim,
        ev.mutual_info, metrics.seconds,
    )
    return metrics


def final_figures(
    cfg: RunConfig, model: VAE, val_x: torch.Tensor, last: EpochMetrics, data: Any, device: torch.device,
    nll_iwae: float | None = None,
) -> dict[str, Any]:
    """The last epoch's validation figures plus the IWAE estimate (and the test split if asked);
    ``nll_iwae``, when given, is the validation IWAE estimate already computed (a population
    computes its members' in one batched pass)."""
    final: dict[str, Any] = {k: v for k, v in last.to_dict().items() if k not in ("epoch", "seconds", "train_seconds", "train_loss")}
    final["epochs"] = last.epoch
    final["latent_dim"] = model.latent_dim
    final["iwae_samples"] = cfg.eval.iwae_samples
    k, chunk = cfg.eval.iwae_samples, cfg.eval.iwae_chunk
    if nll_iwae is None and k > 0:
        nll_iwae = iwae_nll(model, val_x[: cfg.eval.iwae_max_examples], k=k, chunk=chunk, seed=cfg.seed)
    final["nll_iwae"] = nll_iwae if k > 0 else None
    if cfg.eval.test:
        test = data.test_split(cfg.eval.test_max_examples)
        if test is None:
            raise ConfigError(f"eval.test: dataset {data.name!r} has no test split; set eval.test: false")
        test_x = test.to(device)
        ev = evaluate(model, test_x, batch_size=cfg.eval.batch_size, au_threshold=cfg.eval.au_threshold, seed=cfg.seed)
        final["test"] = ev.to_dict()
        test_k = k if cfg.eval.test_iwae_samples is None else cfg.eval.test_iwae_samples
        final["test"]["examples"] = len(test_x)
        final["test"]["iwae_samples"] = test_k
        final["test"]["nll_iwae"] = iwae_nll(model, test_x, k=test_k, chunk=chunk, seed=cfg.seed) if test_k > 0 else None
        if isinstance(model.likelihood, Categorical):
            final["test"].update(per_token(model.likelihood, test_x, final["test"]))
    if isinstance(model.likelihood, Categorical):
        iw_x = val_x[: cfg.eval.iwae_max_examples]
        final.update(per_token(model.likelihood, val_x, final, iw_x=iw_x))
    return final


def per_token(lik: Categorical, x: torch.Tensor, figures: dict[str, Any],
              iw_x: torch.Tensor | None = None) -> dict[str, Any]:
    """Token data's figures per token and as perplexity, the way text-VAE papers give them.

    Counted tokens are those the likelihood scores: every token after <bos> that is not
    padding, so <eos> counts and <bos> does not (He et al. 2019, ``text.py``). Perplexity is
    exp(total NLL / counted tokens) over the same sequences as the NLL: the -ELBO over the
    validation figures' sequences, the IWAE NLL over its (``eval.iwae_max_examples``) ones.
    """
    per_seq = float(lik.counted(x).double().mean())
    out: dict[str, Any] = {"tokens_per_sequence": per_seq, "elbo_per_token": figures["elbo"] / per_seq,
                           "ppl_elbo": math.exp(figures["elbo"] / per_seq)}
    if figures.get("nll_iwae") is not None:
        iw_per_seq = float(lik.counted(x if iw_x is None else iw_x).double().mean())
        out["nll_iwae_per_token"] = figures["nll_iwae"] / iw_per_seq
        out["ppl_iwae"] = math.exp(figures["nll_iwae"] / iw_per_seq)
    return out


def _check_finite(losses: torch.Tensor, epoch: int, beta: float) -> None:
    """One host sync per epoch: find the first non-finite step loss, if any."""
    bad = ~torch.isfinite(losses)
    if bool(bad.any()):
        step = int(bad.int().argmax()) + 1
        raise TrainingError(
            f"training loss is not finite at epoch {epoch}, step {step} (β={beta:.4g}); "
            "lower optim.lr, set optim.grad_clip or check the data for NaN",
            epoch=epoch,
            step=step,
        )


def _resume_key(config: dict[str, Any]) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: all but where and how fast it runs."""
    return {k: v for k, v in config.items() if k not in ("device", "threads", "provenance")}


def sequence_info(data: Any) -> SequenceInfo | None:
    """What a sequence model needs of token data's vocabulary (None for images and vectors)."""
    if getattr(data, "vocab_size", None) is None:
        return None
    return SequenceInfo(vocab_size=data.vocab_size, max_len=data.shape[0], pad_id=data.pad_id,
                        bos_id=data.bos_id, eos_id=data.eos_id, unk_id=data.unk_id)


def _fresh(cfg: RunConfig, shape: tuple[int, ...], device: torch.device, sequence: SequenceInfo | None = None
           ) -> tuple[VAE, torch.optim.Optimizer, torch.Generator]:
    """Seeded model, optimizer and batch generator: the same config gives the same start."""
    seed_everything(cfg.seed)
    model = build_vae(cfg, shape, sequence).to(device)
    return model, make_optimizer(cfg, model), torch.Generator(device=device).manual_seed(cfg.seed)


def make_optimizer(cfg: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam; the fused kernel (CPU and CUDA) is about 20% faster per step than foreach here."""
    device = next(model.parameters()).device
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                            fused=fused or None)


def _state(cfg: RunConfig, model: VAE, optimizer: torch.optim.Optimizer, gen: torch.Generator,
           history: list[EpochMetrics]) -> dict[str, Any]:
    return {
        "config": cfg.to_dict(),
        "epoch": len(history),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": [h.to_dict() for h in history],
        # the batch generator's state only fits a generator of the same device type; the CUDA
        # stream is saved only for a CUDA run, and only for its own device
        "rng": {"torch": torch.get_rng_state(), "batches": gen.get_state(),
                "batches_device": gen.device.type,
                "cuda": torch.cuda.get_rng_state(gen.device) if gen.device.type == "cuda" else None},
    }


def _restore_rng(rng: dict[str, Any], gen: torch.Generator, seed: int, epoch: int) -> None:
    """Random streams of the checkpoint; across device types the batch order is drawn anew.

    A retry may run on another kind of device than its original (a CPU worker takes over a GPU
    worker's trial): the weights and optimizer carry over, only the random streams cannot.
    """
    torch.set_rng_state(rng["torch"])
    saved_on = rng.get("batches_device", "cpu")  # checkpoints before this key: CPU generators
    if saved_on == gen.device.type:
        gen.set_state(rng["batches"])
        cuda = rng.get("cuda")
        if gen.device.type == "cuda" and isinstance(cuda, torch.Tensor):
            torch.cuda.set_rng_state(cuda, gen.device)
    else:
        gen.manual_seed(derive_seed(seed, f"resume-{epoch}"))
        log.info("checkpoint written on %s, resumed on %s: batches after epoch %d follow a new "
                 "random order", saved_on, gen.device.type, epoch)


def _restore(checkpoint: Checkpoint | None, cfg: RunConfig, model: VAE, optimizer: torch.optim.Optimizer,
             gen: torch.Generator, history: list[EpochMetrics]) -> bool:
    """Load the checkpoint into the run, filling ``history``; False when the model must be
    rebuilt because a restore failed halfway.

    A checkpoint of another config, or one that cannot be read, is ignored with a warning.
    """
    if checkpoint is None:
        return True
    try:
        state = checkpoint.load()
        if state is None:
            return True
        if _resume_key(state["config"]) != _resume_key(cfg.to_dict()):
            log.warning("checkpoint belongs to another run config; starting this run from scratch")
            return True
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history.extend(EpochMetrics(**h) for h in state["history"])
        _restore_rng(state["rng"], gen, cfg.seed, len(history))
    except Exception as e:  # a corrupt or truncated checkpoint must not kill the trial
        reason = e if isinstance(e, CheckpointError) else (
            f"checkpoint could not be restored ({type(e).__name__}: {e})")
        log.warning("%s; starting this run from scratch", reason)
        history.clear()
        return False
    log.info("resumed from the checkpoint after epoch %d", len(history))
    return True
