"""The run config: everything that defines one training run, as typed dataclasses.

A :class:`RunConfig` round-trips through YAML (``from_file`` / ``to_yaml``) and is what
``vae-search train`` reads, what every search trial stores, and what ``vae-search export`` writes.
Unknown keys and bad values are reported all at once, each with its dotted key and what is
allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vae_search._typed import from_dict, to_dict
from vae_search.errors import ConfigError

DatasetName = Literal[
    "shapes", "mnist", "fashion-mnist", "kmnist", "cifar10", "array", "image-folder"
]


@dataclass
class DataConfig:
    """Where the data comes from and how it is split.

    Attributes:
        name: ``shapes`` (generated, offline), a torchvision dataset, ``array`` (a .npy/.npz
            file at ``path``) or ``image-folder`` (images under ``path``).
        root: directory torchvision datasets are downloaded to and read from.
        path: file or folder for ``array`` / ``image-folder``.
        download: let torchvision download missing files.
        val_fraction: share of the training set held out for validation.
        split_seed: seed of the train/validation split (kept apart from the run seed so that
            trials with different seeds see the same validation set).
        binarize: ``dynamic`` re-samples binary pixels every batch (training) and binarises the
            validation and test sets once with ``split_seed``; ``static`` binarises all once.
        size: number of generated examples (``shapes``).
        image_size: side of generated images (``shapes``).
        limit: use at most this many training examples (quick experiments).
    """

    name: DatasetName = "shapes"
    root: str = "data"
    path: str | None = None
    download: bool = True
    val_fraction: float = 0.1
    split_seed: int = 0
    binarize: Literal["none", "dynamic", "static"] = "none"
    size: int = 20000
    image_size: int = 32
    limit: int | None = None

    def problems(self) -> list[str]:
        out = []
        if not 0.0 < self.val_fraction < 1.0:
            out.append(f"val_fraction: must be in (0, 1), got {self.val_fraction}")
        if self.name in ("array", "image-folder") and not self.path:
            out.append(f"path: required when name is {self.name!r}")
        if self.size < 10:
            out.append(f"size: must be at least 10, got {self.size}")
        if self.image_size < 8:
            out.append(f"image_size: must be at least 8, got {self.image_size}")
        if self.limit is not None and self.limit < 2:
            out.append(f"limit: must be at least 2 or null, got {self.limit}")
        return out


@dataclass
class ModelConfig:
    """Encoder/decoder architecture and likelihood.

    Attributes:
        arch: ``mlp`` (hidden widths from ``hidden``; ``[]`` is a linear VAE) or ``conv``
            (stride-2 convolutions with ``channels``, for images).
        hidden: MLP hidden widths, mirrored in the decoder.
        channels: conv channels per stride-2 layer, mirrored in the decoder.
        activation: nonlinearity between layers.
        latent_dim: number of latent dimensions.
        likelihood: ``bernoulli`` (decoder outputs logits) or ``gaussian`` (decoder outputs
            the mean).
        sigma: observation noise std of the gaussian likelihood (start value if learned).
        learn_sigma: learn one shared sigma (the gaussian likelihood only).
    """

    arch: Literal["mlp", "conv"] = "mlp"
    hidden: list[int] = field(default_factory=lambda: [256])
    channels: list[int] = field(default_factory=lambda: [32, 64])
    activation: Literal["relu", "tanh", "elu", "gelu"] = "relu"
    latent_dim: int = 10
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    sigma: float = 1.0
    learn_sigma: bool = False

    def problems(self) -> list[str]:
        out = []
        if self.latent_dim < 1:
            out.append(f"latent_dim: must be at least 1, got {self.latent_dim}")
        if any(h < 1 for h in self.hidden):
            out.append(f"hidden: widths must be positive, got {self.hidden}")
        if self.arch == "conv" and not self.channels:
            out.append("channels: a conv model needs at least one layer")
        if any(c < 1 for c in self.channels):
            out.append(f"channels: must be positive, got {self.channels}")
        if self.sigma <= 0:
            out.append(f"sigma: must be positive, got {self.sigma}")
        return out


@dataclass
class PriorConfig:
    """The prior p(z).

    Attributes:
        kind: ``standard`` N(0, I), ``mog`` (learnable mixture of Gaussians) or ``vamp``
            (VampPrior, Tomczak & Welling 2018).
        components: mixture components (``mog``) or pseudo-inputs (``vamp``).
    """

    kind: Literal["standard", "mog", "vamp"] = "standard"
    components: int = 10

    def problems(self) -> list[str]:
        if self.components < 1:
            return [f"components: must be at least 1, got {self.components}"]
        return []


@dataclass
class ScheduleConfig:
    """The KL weight β over training; time ``t`` is in epochs and moves every step.

    Attributes:
        kind: ``constant`` (β = target), ``linear`` (β = min(target, beta_start + rate * t),
            Bowman et al. 2016), ``sigmoid`` (beta_start + (target - beta_start) /
            (1 + exp(-steepness (t - midpoint)))), ``cyclical`` (Fu et al. 2019: ``cycles``
            cycles over the run, rising linearly over the first ``ratio`` of each).
        beta: the target KL weight.
        beta_start: β at t = 0 (linear, cyclical); the sigmoid's lower asymptote (its value
            at t = 0 is beta_start + (beta - beta_start) / (1 + exp(steepness * midpoint))).
        rate: β gained per epoch (linear).
        midpoint: epoch of the sigmoid's midpoint.
        steepness: sigmoid slope, per epoch.
        cycles: number of cycles (cyclical).
        ratio: share of each cycle spent rising (cyclical).
        free_bits: λ of free bits (Kingma et al. 2016), nats per latent dimension; 0 is off.
    """

    kind: Literal["constant", "linear", "sigmoid", "cyclical"] = "linear"
    beta: float = 1.0
    beta_start: float = 0.0
    rate: float = 0.2
    midpoint: float = 5.0
    steepness: float = 1.0
    cycles: int = 4
    ratio: float = 0.5
    free_bits: float = 0.0

    def problems(self) -> list[str]:
        out = []
        if self.beta < 0:
            out.append(f"beta: must be >= 0, got {self.beta}")
        if self.beta_start < 0:
            out.append(f"beta_start: must be >= 0, got {self.beta_start}")
        if self.kind == "linear" and self.rate <= 0:
            out.append(f"rate: must be > 0 for a linear schedule, got {self.rate}")
        if self.kind == "linear" and self.beta_start > self.beta:
            out.append(
                f"beta_start: a linear schedule rises from beta_start to beta, but beta_start "
                f"{self.beta_start} > beta {self.beta}; lower it, or use kind: constant"
            )
        if self.cycles < 1:
            out.append(f"cycles: must be at least 1, got {self.cycles}")
        if not 0.0 < self.ratio <= 1.0:
            out.append(f"ratio: must be in (0, 1], got {self.ratio}")
        if self.free_bits < 0:
            out.append(f"free_bits: must be >= 0, got {self.free_bits}")
        return out


@dataclass
class OptimConfig:
    """Adam optimiser settings."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None

    def problems(self) -> list[str]:
        out = []
        if self.lr <= 0:
            out.append(f"lr: must be > 0, got {self.lr}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            out.append(f"grad_clip: must be > 0 or null, got {self.grad_clip}")
        return out


@dataclass
class EvalConfig:
    """Validation metrics (every epoch) and the final likelihood estimate.

    Attributes:
        batch_size: examples per evaluation batch.
        max_examples: cap on validation examples used per epoch (null: all).
        iwae_samples: k of the final importance-weighted NLL estimate (0 turns it off).
        iwae_max_examples: validation examples used for it (null: all).
        iwae_chunk: examples x samples evaluated at once, to bound memory.
        au_threshold: δ of the active-units count (Burda et al. 2016).
        test: also evaluate the test split at the end (it is otherwise never touched).
    """

    batch_size: int = 1000
    max_examples: int | None = None
    iwae_samples: int = 100
    iwae_max_examples: int | None = 1000
    iwae_chunk: int = 100_000
    au_threshold: float = 0.01
    test: bool = False

    def problems(self) -> list[str]:
        out = []
        if self.batch_size < 2:
            out.append(f"batch_size: must be at least 2, got {self.batch_size}")
        if self.iwae_samples < 0:
            out.append(f"iwae_samples: must be >= 0, got {self.iwae_samples}")
        if self.iwae_chunk < 1:
            out.append(f"iwae_chunk: must be >= 1, got {self.iwae_chunk}")
        if self.au_threshold <= 0:
            out.append(f"au_threshold: must be > 0, got {self.au_threshold}")
        return out


@dataclass
class RunConfig:
    """One complete training run.

    Attributes:
        epochs: passes over the training split.
        batch_size: training batch size.
        seed: seeds torch, numpy and Python's random.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:K``.
        threads: CPU threads for this process (null: torch's default); set it when several
            processes share a machine.
        amp: bfloat16 autocast on CUDA (ignored on CPU).
        compile: ``torch.compile`` the model (CUDA only; ignored on CPU).
        images: write PNG grids of reconstructions and prior samples.
        provenance: where this config came from (``vae-search export`` writes the study, trial,
            metrics and package versions here); not used by training.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    amp: bool = False
    compile: bool = False
    images: bool = True
    provenance: dict[str, Any] | None = None

    def problems(self) -> list[str]:
        out = []
        if self.epochs < 1:
            out.append(f"epochs: must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            out.append(f"batch_size: must be at least 1, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            out.append(f"threads: must be at least 1 or null, got {self.threads}")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            out.append(f"device: {dev!r} is not 'auto', 'cpu', 'cuda' or 'cuda:K'")
        return out

    # -- construction and serialisation -------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> RunConfig:
        """Build from a plain dict; raise ConfigError naming every problem."""
        cfg, problems = from_dict(cls, data)
        if cfg is None:
            raise ConfigError(f"{source}: " + "; ".join(problems))
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Read a YAML run config."""
        return cls.from_dict(load_yaml(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def load_yaml(path: str | Path) -> Any:
    """Read YAML safely; a missing or malformed file is a ConfigError naming it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{p}: no such file") from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte {e.start} is {e.object[e.start:e.start + 1]!r}); "
            "give a YAML file, saved as UTF-8"
        ) from e
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read ({e.strerror})") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{p}: malformed YAML{where}: {problem}") from e


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, other values replace)."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
