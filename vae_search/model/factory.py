"""Model factories: how a run config's ``model`` section becomes an encoder and a decoder.

Every architecture, the shipped ones included, is a *factory*: a function that takes one
:class:`ModelContext` and returns ``(encoder, decoder)``, two plain ``nn.Module``:

- ``encoder(x) -> (mu, logvar)``, each ``(B, latent_dim)``;
- ``decoder(z, x) -> likelihood parameters``: Bernoulli logits or Gaussian means shaped like
  ``x`` for images and vectors, or ``(B, T - 1, vocab_size)`` next-token logits for token data
  (position t predicts token t + 1). ``x`` is there for teacher forcing; a decoder that does
  not need it ignores it. Pictures that decode from the prior call ``decoder(z)`` alone, so
  write ``forward(self, z, x=None)``.

The framework owns everything else (prior, likelihood, β schedule, free bits, metrics, IWAE),
so they work unchanged on any factory. ``model.arch: mlp | conv | lstm`` are the shipped
factories (:data:`BUILTIN`); ``model.arch: custom`` with ``model.factory`` names a user's own,
the way uvicorn names an app: ``"package.module:function"`` (importable on every worker: an
installed package, or a folder on ``PYTHONPATH``) or ``"path/to/file.py:function"`` (a file
every worker can read, on a shared path). :func:`check_model` runs one forward and backward
pass on a real batch, so a broken factory is one line before a worker joins a study.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vae_search.config import ModelConfig, RunConfig
from vae_search.errors import ConfigError

Factory = Callable[["ModelContext"], tuple[nn.Module, nn.Module]]


@dataclass(frozen=True)
class SequenceInfo:
    """What a model of token data needs to know of its vocabulary."""

    vocab_size: int
    max_len: int  # T: tokens per padded sequence, <bos> included
    pad_id: int
    bos_id: int
    eos_id: int | None = None
    unk_id: int | None = None


@dataclass(frozen=True)
class ModelContext:
    """Everything a factory is handed.

    Attributes:
        latent_dim: D of z.
        likelihood: ``bernoulli``, ``gaussian`` or ``categorical`` (what the decoder's output
            parameterises).
        options: ``model.options`` of the run config (for the shipped factories: their own
            keys of ``model``).
        event_shape: shape of one example (``(C, H, W)`` or ``(D,)``); for token data ``(T,)``.
        sequence: vocabulary size, maximum length and special ids for token data, else None.
    """

    latent_dim: int
    likelihood: str
    options: dict[str, Any] = field(default_factory=dict)
    event_shape: tuple[int, ...] = ()
    sequence: SequenceInfo | None = None

    @property
    def vocab_size(self) -> int | None:
        return self.sequence.vocab_size if self.sequence else None

    @property
    def max_len(self) -> int | None:
        return self.sequence.max_len if self.sequence else None


# -- the shipped factories ------------------------------------------------------------------
def mlp(ctx: ModelContext) -> tuple[nn.Module, nn.Module]:
    """The MLP VAE; options ``hidden`` (list of widths) and ``activation``."""
    from vae_search.model.networks import MLPDecoder, MLPEncoder

    hidden, act = ctx.options.get("hidden", [256]), ctx.options.get("activation", "relu")
    return (MLPEncoder(ctx.event_shape, hidden, ctx.latent_dim, act),
            MLPDecoder(ctx.event_shape, hidden, ctx.latent_dim, act))


def conv(ctx: ModelContext) -> tuple[nn.Module, nn.Module]:
    """The stride-2 conv VAE for images; options ``channels`` and ``activation``."""
    from vae_search.model.networks import ConvDecoder, ConvEncoder

    channels, act = ctx.options.get("channels", [32, 64]), ctx.options.get("activation", "relu")
    return (ConvEncoder(ctx.event_shape, channels, ctx.latent_dim, act),
            ConvDecoder(ctx.event_shape, channels, ctx.latent_dim, act))


def lstm(ctx: ModelContext) -> tuple[nn.Module, nn.Module]:
    """The sentence VAE (Bowman et al. 2016); see :mod:`vae_search.model.lstm`."""
    from vae_search.model.lstm import build_lstm

    return build_lstm(ctx)


BUILTIN: dict[str, Factory] = {"mlp": mlp, "conv": conv, "lstm": lstm}

# which ModelConfig keys each shipped factory reads as its options
_BUILTIN_KEYS = {
    "mlp": ("hidden", "activation"),
    "conv": ("channels", "activation"),
    "lstm": ("hidden", "embedding", "word_dropout", "z_every_step"),
}


def context_for(m: ModelConfig, event_shape: tuple[int, ...], sequence: SequenceInfo | None = None
                ) -> ModelContext:
    """The context the run config's model section hands its factory."""
    if m.arch == "custom":
        options = dict(m.options)
    else:
        options = {k: getattr(m, k) for k in _BUILTIN_KEYS[m.arch]}
    return ModelContext(latent_dim=m.latent_dim, likelihood=m.likelihood, options=options,
                        event_shape=tuple(event_shape), sequence=sequence)


# -- user factories -------------------------------------------------------------------------
def _split(ref: str) -> tuple[str, str]:
    target, sep, name = ref.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise ConfigError(f"model.factory {ref!r}: not 'package.module:function' or "
                          "'path/to/file.py:function'")
    return target, name


def _load_file(path: Path, ref: str) -> Any:
    if not path.is_file():
        raise ConfigError(f"model.factory {ref!r}: no such file {path}; put it on a path every "
                          "worker can read (relative paths start at the spec file's folder)")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"vae_search_user_factory_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"model.factory {ref!r}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ConfigError(f"model.factory {ref!r}: importing {path} raised "
                          f"{type(e).__name__}: {e}") from e
    return module


def _module(ref: str) -> tuple[Any, str]:
    target, name = _split(ref)
    if target.endswith(".py"):
        return _load_file(Path(target), ref), name
    try:
        return importlib.import_module(target), name
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"model.factory {ref!r}: no module named {e.name!r}; install the package that holds "
            "it on every worker, or add its folder to PYTHONPATH, or name a file (path/to/file.py:fn)"
        ) from e
    except Exception as e:
        raise ConfigError(f"model.factory {ref!r}: importing {target} raised {type(e).__name__}: {e}") from e


def import_factory(ref: str) -> Factory:
    """The function ``"pkg.mod:fn"`` or ``"path/file.py:fn"`` names; one ConfigError per problem."""
    module, name = _module(ref)
    fn = getattr(module, name, None)
    if fn is None:
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ConfigError(f"model.factory {ref!r}: {module.__name__} has no function {name!r} "
                          f"(it has: {', '.join(public) or 'none'})")
    if not callable(fn):
        raise ConfigError(f"model.factory {ref!r}: {name} is a {type(fn).__name__}, not a function")
    return fn


def source_hash(ref: str) -> str | None:
    """sha256 (16 hex digits) of the source file that defines the factory; None if unknown."""
    module, _ = _module(ref)
    try:
        path = inspect.getsourcefile(module)
    except TypeError:
        return None
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def record_factory_hash(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``model.factory_hash`` filled in (custom factories only, if not set yet)."""
    m = cfg.model
    if m.arch != "custom" or m.factory_hash:
        return cfg
    return cfg.replace(model=dataclasses.replace(m, factory_hash=source_hash(m.factory or "")))


def build_networks_from(m: ModelConfig, ctx: ModelContext) -> tuple[nn.Module, nn.Module]:
    """Call the model section's factory and check what it returns."""
    fn = BUILTIN[m.arch] if m.arch != "custom" else import_factory(m.factory or "")
    label = f"model.factory {m.factory!r}" if m.arch == "custom" else f"model.arch {m.arch!r}"
    try:
        built = fn(ctx)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"{label}: the factory raised {type(e).__name__}: {e}") from e
    if (not isinstance(built, (tuple, list)) or len(built) != 2
            or not all(isinstance(b, nn.Module) for b in built)):
        got = type(built).__name__ if not isinstance(built, (tuple, list)) else \
            f"({', '.join(type(b).__name__ for b in built)})"
        raise ConfigError(f"{label}: the factory must return (encoder, decoder), two torch.nn.Module, "
                          f"got {got}")
    return built[0], built[1]


def check_model(model: Any, x: torch.Tensor, label: str) -> None:
    """One forward and backward pass of ``model`` (a VAE) on the real batch ``x``.

    Raises one ConfigError, starting with ``label``, for an encoder that does not return
    ``(mu, logvar)`` of shape (B, latent_dim), a decoder whose output the likelihood cannot
    read, or any exception on the way (a wrong layer size, a dtype mix-up). A non-finite loss
    is not its business: that is a finding about the configuration, which the trial records.
    """
    b, d = x.shape[0], model.latent_dim
    try:
        enc = model.encoder(x)
    except Exception as e:
        raise ConfigError(f"{label}: the encoder raised {type(e).__name__}: {e} on a batch of shape "
                          f"{tuple(x.shape)}, dtype {x.dtype}") from e
    if (not isinstance(enc, (tuple, list)) or len(enc) != 2
            or not all(isinstance(t, torch.Tensor) for t in enc)):
        raise ConfigError(f"{label}: the encoder must return (mu, logvar), two tensors, got "
                          f"{type(enc).__name__}")
    for name, t in zip(("mu", "logvar"), enc):
        if tuple(t.shape) != (b, d):
            raise ConfigError(f"{label}: the encoder's {name} has shape {tuple(t.shape)}, expected "
                              f"(batch, latent_dim) = {(b, d)}")
    z = enc[0].detach()
    try:
        out = model.decode(z, x)
    except Exception as e:
        raise ConfigError(f"{label}: the decoder raised {type(e).__name__}: {e} on z of shape "
                          f"{(b, d)}") from e
    expected = model.likelihood.param_shape(x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"{label}: the decoder's output has shape {got}, expected {expected} "
                          f"({model.likelihood.describe()})")
    try:
        model.zero_grad(set_to_none=True)
        out = model(x)
        loss = (out.kl - out.log_px).mean()  # the -ELBO at β = 1
        loss.backward()
    except Exception as e:
        raise ConfigError(f"{label}: a forward and backward pass raised {type(e).__name__}: {e}") from e
    finally:
        model.zero_grad(set_to_none=True)
