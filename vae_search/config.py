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
    "shapes", "mnist", "fashion-mnist", "kmnist", "cifar10", "array", "image-folder",
    "tokens", "text", "sentences",
]
# datasets of token ids (N, T): a categorical likelihood and a sequence model read them
TOKEN_DATASETS = ("tokens", "text", "sentences")
SEQUENCE_ARCHS = ("lstm", "custom")


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
        size: number of generated examples (``shapes``, ``sentences``).
        image_size: side of generated images (``shapes``).
        limit: use at most this many training examples (quick experiments).
        pad_id: the padding id of ``tokens`` data (ids are 0..vocab_size-1).
        vocab_size: ids of ``tokens`` data lie in [0, vocab_size); null: the largest id + 1.
        tokenizer: how ``text`` lines become tokens: ``word`` (split on whitespace) or
            ``char``.
        min_count: a ``text`` token seen fewer times in the training split becomes <unk>.
        max_vocab: keep at most this many of the most frequent training tokens (specials not
            counted); null: all.
        max_len: longest ``text`` / ``sentences`` sequence in tokens, <bos> and <eos>
            included; longer lines are cut (their <eos> kept).
        vocab: the vocabulary, id order (``text``, ``sentences``); null: built from the
            training split. Export fills it in, so a re-run uses the trial's vocabulary.
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
    pad_id: int = 0
    vocab_size: int | None = None
    tokenizer: Literal["word", "char"] = "word"
    min_count: int = 1
    max_vocab: int | None = None
    max_len: int = 64
    vocab: list[str] | None = None

    @property
    def is_tokens(self) -> bool:
        """True for datasets of token ids (sequence models, categorical likelihood)."""
        return self.name in TOKEN_DATASETS

    def problems(self) -> list[str]:
        out = []
        if self.max_len < 2:
            out.append(f"max_len: must be at least 2 (room for <bos> and <eos>), got {self.max_len}")
        if self.min_count < 1:
            out.append(f"min_count: must be at least 1, got {self.min_count}")
        if self.max_vocab is not None and self.max_vocab < 1:
            out.append(f"max_vocab: must be at least 1 or null, got {self.max_vocab}")
        if self.vocab_size is not None and self.vocab_size < 2:
            out.append(f"vocab_size: must be at least 2 or null, got {self.vocab_size}")
        if not 0.0 < self.val_fraction < 1.0:
            out.append(f"val_fraction: must be in (0, 1), got {self.val_fraction}")
        if self.name in ("array", "image-folder", "tokens", "text") and not self.path:
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

    Every architecture is built by a factory (:mod:`vae_search.model.factory`): the shipped
    ones by name, a user's own with ``arch: custom``.

    Attributes:
        arch: ``mlp`` (hidden widths from ``hidden``; ``[]`` is a linear VAE), ``conv``
            (stride-2 convolutions with ``channels``, for images), ``lstm`` (a sentence VAE
            for token data: LSTM encoder, autoregressive LSTM decoder) or ``custom`` (the
            function ``factory`` names builds it).
        factory: ``"package.module:function"`` or ``"path/to/file.py:function"`` (a relative
            path is taken from the folder of the spec or config file); ``arch: custom`` only.
        options: free mapping handed to the factory (``ModelContext.options``); the search
            space reaches it by dotted paths (``model.options.width``).
        factory_hash: sha256 (16 hex) of the factory's source file, recorded by the search
            and by ``train``; a run whose code differs warns. Not set by hand.
        hidden: MLP hidden widths, mirrored in the decoder; ``lstm``: the LSTM layers' width
            (one layer per entry, all equal).
        embedding: token embedding size (``lstm``).
        word_dropout: share of the decoder's input tokens replaced by <unk> while training
            (Bowman et al. 2016; ``lstm``); 1.0 is the inputless decoder.
        z_every_step: also concatenate z to every decoder input, not only to its initial
            state (``lstm``; He et al. 2019 do).
        channels: conv channels per stride-2 layer, mirrored in the decoder.
        activation: nonlinearity between layers.
        latent_dim: number of latent dimensions.
        likelihood: ``bernoulli`` (decoder outputs logits) or ``gaussian`` (decoder outputs
            the mean).
        sigma: observation noise std of the gaussian likelihood (start value if learned).
        learn_sigma: learn one shared sigma (the gaussian likelihood only).
    """

    arch: Literal["mlp", "conv", "lstm", "custom"] = "mlp"
    factory: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    factory_hash: str | None = None
    hidden: list[int] = field(default_factory=lambda: [256])
    channels: list[int] = field(default_factory=lambda: [32, 64])
    activation: Literal["relu", "tanh", "elu", "gelu"] = "relu"
    latent_dim: int = 10
    likelihood: Literal["bernoulli", "gaussian", "categorical"] = "bernoulli"
    sigma: float = 1.0
    learn_sigma: bool = False
    embedding: int = 128
    word_dropout: float = 0.0
    z_every_step: bool = True

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
        if self.arch == "custom" and not self.factory:
            out.append("factory: arch custom needs model.factory ('package.module:function' or "
                       "'path/to/file.py:function')")
        if self.factory and self.arch != "custom":
            out.append(f"factory: only read with arch: custom, but arch is {self.arch!r}; "
                       "set arch: custom or drop factory")
        if self.factory and ":" not in self.factory:
            out.append(f"factory: {self.factory!r} is not 'package.module:function' or "
                       "'path/to/file.py:function'")
        if self.arch == "lstm":
            if not self.hidden or len(set(self.hidden)) != 1:
                out.append(f"hidden: an lstm needs one or more layers of one width, got {self.hidden}")
            if self.embedding < 1:
                out.append(f"embedding: must be at least 1, got {self.embedding}")
        if not 0.0 <= self.word_dropout <= 1.0:
            out.append(f"word_dropout: must be in [0, 1], got {self.word_dropout}")
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
        iwae_chunk: rows (examples x samples) per decoder pass of the IWAE bound, to bound
            memory; null: as many as keep one pass's decoder output within 8 MiB on the CPU
            (the fastest in ``benchmarks/bench_iwae.py``) or 256 MiB on CUDA. Speed and memory
            only: the bound does not depend on it.
        au_threshold: δ of the active-units count (Burda et al. 2016).
        test: also evaluate the test split at the end (it is otherwise never touched).
        test_max_examples: test examples evaluated then, the split's first N (null: all);
            ``vae-search finalize`` reads it from the search's run config.
        test_iwae_samples: k of the test split's IWAE bound (null: ``iwae_samples``);
            ``vae-search finalize --k`` sets it.
    """

    batch_size: int = 1000
    max_examples: int | None = None
    iwae_samples: int = 100
    iwae_max_examples: int | None = 1000
    iwae_chunk: int | None = None
    au_threshold: float = 0.01
    test: bool = False
    test_max_examples: int | None = None
    test_iwae_samples: int | None = None

    def problems(self) -> list[str]:
        out = []
        if self.batch_size < 2:
            out.append(f"batch_size: must be at least 2, got {self.batch_size}")
        if self.iwae_samples < 0:
            out.append(f"iwae_samples: must be >= 0, got {self.iwae_samples}")
        if self.iwae_chunk is not None and self.iwae_chunk < 1:
            out.append(f"iwae_chunk: must be >= 1 or null (by memory), got {self.iwae_chunk}")
        if self.au_threshold <= 0:
            out.append(f"au_threshold: must be > 0, got {self.au_threshold}")
        if self.test_iwae_samples is not None and self.test_iwae_samples < 0:
            out.append(f"test_iwae_samples: must be >= 0 or null (iwae_samples), got {self.test_iwae_samples}")
        if self.test_max_examples is not None and self.test_max_examples < 1:
            out.append(f"test_max_examples: must be >= 1 or null (the whole test split), got {self.test_max_examples}")
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
        return out + self._data_model_problems()

    def _data_model_problems(self) -> list[str]:
        """What the data and the model must agree on (checked at load, not in trial 7)."""
        m, name = self.model, self.data.name
        out = []
        if self.data.is_tokens:
            if m.arch not in SEQUENCE_ARCHS:
                out.append(f"model.arch: {m.arch!r} reads images or vectors, but data {name!r} is "
                           "token ids; use arch: lstm or a custom factory")
            if m.likelihood != "categorical":
                out.append(f"model.likelihood: token data {name!r} need likelihood: categorical, "
                           f"got {m.likelihood!r}")
            if self.prior.kind == "vamp":
                out.append(f"prior.kind: vamp needs pseudo-inputs the encoder can read, and token "
                           f"ids ({name!r}) are discrete; use standard or mog")
        else:
            if m.arch == "lstm":
                out.append(f"model.arch: lstm needs token data (tokens, text, sentences), got {name!r}")
            if m.likelihood == "categorical":
                out.append(f"model.likelihood: categorical needs token data (tokens, text, "
                           f"sentences), got {name!r}")
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
        """Read a YAML run config; a relative ``model.factory`` file is taken from its folder."""
        raw = resolve_factory_path(load_yaml(path), Path(path).parent)
        return cls.from_dict(raw, source=str(path))

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


def resolve_factory_path(run: Any, folder: Path) -> Any:
    """``run`` with a relative ``model.factory`` file path made absolute from ``folder``.

    ``"models/vae.py:build"`` in ``/specs/text.yaml`` becomes ``"/specs/models/vae.py:build"``;
    module paths (``"pkg.mod:build"``) and absolute paths are left as they are.
    """
    if not isinstance(run, dict) or not isinstance(run.get("model"), dict):
        return run
    factory = run["model"].get("factory")
    if not isinstance(factory, str) or ":" not in factory:
        return run
    target, _, fn = factory.rpartition(":")
    if not target.endswith(".py") or Path(target).is_absolute():
        return run
    model = {**run["model"], "factory": f"{(folder / target).resolve()}:{fn}"}
    return {**run, "model": model}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, other values replace)."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
