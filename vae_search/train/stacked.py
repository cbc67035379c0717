"""P VAEs of one network shape as one stacked model: one batched forward and backward pass.

The members' parameters (and buffers) are stacked along a new leading dimension with
``torch.func.stack_module_state``. Two forwards run over them:

- **native** (built-in MLP encoder and decoder, a prior and a likelihood without parameters
  whose buffers are equal in all members, such as N(0, I) with Bernoulli): each linear layer
  is one ``torch.baddbmm`` over the stacked weights, and the first member's own prior and
  likelihood modules score the (P, B, ...) tensors. It is the single run's arithmetic (the
  same layers, densities and KL in the same order), with each member's matmul a slice of one
  batched one. On 2 CPU cores (1 thread) ``vmap`` spent a third of the quickstart's P = 8
  step in strided copies and batched matmuls over transposed layouts (63 ms a step against
  50 ms for the 8 single steps); see the README for what the native path gives;
- **vmap** of ``functional_call`` over a template module, for everything else
  :func:`vae_search.model.build_vae` builds (conv networks, mixture priors, a learned σ,
  custom factories that work under ``vmap``).

:meth:`StackedVAE.iwae_nll` is the final IWAE bound of several members in batched passes,
each member's noise drawn per example from its own generator exactly as
:func:`vae_search.metrics.iwae_nll` draws it (:func:`vae_search.metrics.iwae_noise`), so each
member's figure is its single run's whatever the passes.

:class:`StackedAdam` is Adam on the stacked tensors with a learning rate, weight decay,
gradient clip and step count per member. Adam is elementwise, so one update over a stacked
tensor is each member's own update; only the scalars differ per member, and they are broadcast
along the leading dimension (``torch.optim.Adam`` cannot: a parameter group cannot split one
tensor). On CPU and CUDA it calls torch's fused Adam kernel, the single run's own, once per
member on that member's slices; elsewhere it writes the same update out (L2 weight decay, bias
corrections, ε added after the square root). Either way a member's figures equal its single
run to float rounding.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from vae_search import metrics
from vae_search.model import VAE
from vae_search.model.gaussian import full_precision, log_normal
from vae_search.model.networks import MLPDecoder, MLPEncoder


class _Step(nn.Module):
    """One member's training forward with the noise given: (log p(x|z), KL groups)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.vae
        mu, logvar = v.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps  # VAE.reparameterize with eps drawn outside vmap
        out = v.decode(z)
        return v.likelihood.log_prob(x, out), v.prior.kl_terms(mu, logvar, z)


class _LogWeights(nn.Module):
    """One member's IWAE log weights (k, b) for x (b, ...) with the noise eps (k, b, D)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.vae.log_importance_weights(x, eps.shape[0], eps=eps)


def _native_problem(models: Sequence[VAE]) -> str | None:
    """Why the native (``baddbmm``) forward does not fit ``models`` (None: it does)."""
    first = models[0]
    if type(first.encoder) is not MLPEncoder or type(first.decoder) is not MLPDecoder:
        return "not the built-in MLP networks"
    for part in ("prior", "likelihood"):
        module = getattr(first, part)
        if any(True for _ in module.parameters()):
            return f"the {part} has parameters"
        for name, b in module.named_buffers():
            if any(not torch.equal(b, dict(getattr(m, part).named_buffers())[name]) for m in models[1:]):
                return f"the {part}'s buffer {name} differs between members"
    return None


class _Linear(torch.autograd.Function):
    """P linear layers at once: h (P, N, in), w (P, out, in), b (P, out) or None -> (P, N, out),
    the single run's ``F.linear`` per member. Its backward is ``F.linear``'s (grad_h = g w,
    grad_w = g^T h, grad_b = Σ_N g), written so that grad_w comes out in w's layout: autograd
    through ``baddbmm(b, h, w^T)`` gives the transposed gradient and then copies it back into
    w's strides, a third of the native step on the quickstart's 1024-128 layer."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(h, w)
        ctx.has_bias = b is not None
        wt = w.transpose(1, 2)
        return torch.bmm(h, wt) if b is None else torch.baddbmm(b.unsqueeze(1), h, wt)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, w = ctx.saved_tensors
        grad_h = torch.bmm(g, w.to(g.dtype)) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(g.transpose(1, 2), h.to(g.dtype)) if ctx.needs_input_grad[1] else None
        grad_b = g.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_h, grad_w, grad_b


def _chain(params: dict[str, torch.Tensor], prefix: str, net: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
    """``net`` (Linear layers and parameter-free activations) over the stacked weights:
    h (P, N, features) -> (P, N, out)."""
    for i, layer in enumerate(net):
        if isinstance(layer, nn.Linear):
            h = _Linear.apply(h, params[f"{prefix}.{i}.weight"], params.get(f"{prefix}.{i}.bias"))
        else:
            h = layer(h)
    return h


class StackedVAE:
    """The members' parameters stacked, and the training forward over them (native or vmap,
    see the module docstring).

    Args:
        models: VAEs of one structure (same parameter names and shapes).
    """

    #: fewest examples per batched IWAE pass before members are split into groups (tiny passes
    #: of one or two examples cost more than they batch)
    min_pass_examples = 8

    def __init__(self, models: Sequence[VAE]):
        params, buffers = stack_module_state(list(models))
        self.names = list(params)
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        self.native = _native_problem(models) is None
        first = copy.deepcopy(models[0])
        # the native forward reads the first member's (parameter-free) modules: activations,
        # prior and likelihood; the vmapped ones a template without storage
        self._first = first
        self._template = _Step(copy.deepcopy(models[0]).to("meta"))
        self._weights_template = _LogWeights(copy.deepcopy(models[0]).to("meta").eval())
        self._forward = vmap(self._member_forward)
        self._log_weights = vmap(self._member_log_weights, in_dims=(0, 0, None, 0))

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def _member_forward(self, params: dict, buffers: dict, x: torch.Tensor, eps: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        named = {f"vae.{k}": v for k, v in {**params, **buffers}.items()}
        return functional_call(self._template, named, (x, eps))

    def _member_log_weights(self, params: dict, buffers: dict, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        named = {f"vae.{k}": v for k, v in {**params, **buffers}.items()}
        return functional_call(self._weights_template, named, (x, eps))

    def _encode(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Native :meth:`VAE.encode` of x (P, B, ...)."""
        mu, logvar = _chain(params, "encoder.net", self._first.encoder.net, x.flatten(2)).chunk(2, dim=-1)
        return full_precision(mu), full_precision(logvar)

    def _decode(self, params: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        """Native :meth:`VAE.decode` of z (P, ..., D): data-shaped (P, ..., *shape)."""
        lead = z.shape[:-1]
        out = _chain(params, "decoder.net", self._first.decoder.net, z.reshape(lead[0], -1, z.shape[-1]))
        return full_precision(out.reshape(*lead, *self._first.decoder.shape))

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (P, B, ...), eps (P, B, D) -> log p(x|z) (P, B) and KL groups (P, B, G)."""
        if not self.native:
            return self._forward(self.params, self.buffers, x, eps)
        v = self._first
        mu, logvar = self._encode(self.params, x)
        z = mu + torch.exp(0.5 * logvar) * eps
        out = self._decode(self.params, z)
        return v.likelihood.log_prob(x, out), v.prior.kl_terms(mu, logvar, z)

    @torch.no_grad()
    def log_weights(self, slots: Sequence[int], x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The members at ``slots``: IWAE log weights (S, k, b) of x (b, ...) shared by all,
        with their noise eps (S, k, b, D); :meth:`VAE.log_importance_weights` per member."""
        index = torch.as_tensor(list(slots), dtype=torch.long, device=x.device)
        params = {k: v.detach().index_select(0, index) for k, v in self.params.items()}
        if not self.native:
            buffers = {k: v.index_select(0, index) for k, v in self.buffers.items()}
            return self._log_weights(params, buffers, x, eps)
        v = self._first
        mu, logvar = self._encode(params, x.unsqueeze(0).expand(len(slots), *x.shape))
        mu, logvar = mu.unsqueeze(1), logvar.unsqueeze(1)  # (S, 1, b, D) against eps (S, k, b, D)
        z = mu + torch.exp(0.5 * logvar) * eps
        log_px = v.likelihood.log_prob(x, self._decode(params, z))
        return log_px + v.prior.log_prob(z) - log_normal(z, mu, logvar).sum(-1)

    @torch.no_grad()
    def iwae_nll(self, slots: Sequence[int], data: torch.Tensor, *, k: int, chunk: int | None,
                 seeds: Sequence[int]) -> list[float]:
        """:func:`vae_search.metrics.iwae_nll` of the members at ``slots`` (seeds: theirs) in
        batched passes: example i's noise for a member is the i-th draw of
        :func:`vae_search.metrics.iwae_noise` from that member's own generator, as in its
        single run, so each figure is its single run's (to float rounding) whatever the passes.

        ``chunk`` bounds examples x samples x members per pass (None: the single run's
        memory-sized :func:`vae_search.metrics.iwae_chunk_for`); members are split into groups
        where fewer than :attr:`min_pass_examples` examples of each would fit. k above the pass
        size (the single run splits the samples) goes member by member."""
        rows = metrics.iwae_chunk_for(self._first, data) if chunk is None else chunk
        if k > rows:
            return [self._one_iwae(s, data, k, chunk, seed) for s, seed in zip(slots, seeds)]
        device = data.device
        dtype = next(iter(self.params.values())).dtype
        gens = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        totals = torch.zeros(len(slots), device=device, dtype=torch.float64)
        few = min(self.min_pass_examples, data.shape[0])
        group = max(1, min(len(slots), rows // (k * few)))  # members per pass
        latent = self._first.latent_dim
        for lo in range(0, len(slots), group):
            hi = min(len(slots), lo + group)
            per = max(1, rows // (k * (hi - lo)))  # examples per pass
            for a in range(0, data.shape[0], per):
                x = data[a : a + per]
                # each member's generator is read in example order (a member is in one group)
                e = torch.stack([metrics.iwae_noise(x.shape[0], k, latent, gens[i], dtype) for i in range(lo, hi)])
                log_w = self.log_weights(slots[lo:hi], x, e)  # (S, k, b)
                totals[lo:hi] += (torch.logsumexp(log_w, dim=1) - math.log(k)).double().sum(1)
        return [-float(t) / data.shape[0] for t in totals]

    def _one_iwae(self, slot: int, data: torch.Tensor, k: int, chunk: int | None, seed: int) -> float:
        model = copy.deepcopy(self._first)
        self.copy_into(slot, model)
        return metrics.iwae_nll(model, data, k=k, chunk=chunk, seed=seed)

    def keep(self, slots: Sequence[int]) -> None:
        """Keep only the members at ``slots`` (in that order): the others' slots are dropped."""
        index = torch.as_tensor(list(slots), dtype=torch.long, device=next(iter(self.params.values())).device)
        self.params = {k: v.detach().index_select(0, index).requires_grad_(True) for k, v in self.params.items()}
        self.buffers = {k: v.index_select(0, index) for k, v in self.buffers.items()}

    @torch.no_grad()
    def copy_into(self, slot: int, model: VAE) -> None:
        """Write member ``slot``'s parameters and buffers into its own module ``model``."""
        for name, p in model.named_parameters():
            p.copy_(self.params[name][slot])
        for name, b in model.named_buffers():
            if name in self.buffers:
                b.copy_(self.buffers[name][slot])


def stacked_loss(log_px: torch.Tensor, kl_terms: torch.Tensor, beta: torch.Tensor, free_bits: torch.Tensor,
                 latent_dim: int) -> torch.Tensor:
    """Each member's :func:`vae_search.model.vae_loss`, (P,): the batch mean of -log p(x|z)
    plus β times the KL groups, each group floored at its free bits where a member has them."""
    recon = -log_px.mean(1)
    kl_groups = kl_terms.mean(1)  # (P, G)
    per_group = (free_bits * latent_dim / kl_groups.shape[1]).unsqueeze(1)
    kl_groups = torch.where(per_group > 0, torch.maximum(kl_groups, per_group), kl_groups)
    return recon + beta * kl_groups.sum(-1)


def _per_member(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """A (P, 1, ..., 1) tensor that broadcasts one value per member along ``like``."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *([1] * (like.dim() - 1)))


class StackedAdam:
    """Adam (``torch.optim.Adam``'s update, betas (0.9, 0.999), ε 1e-8) with per-member lr,
    weight decay, gradient clip and step count over the stacked tensors of a
    :class:`StackedVAE`.

    The moments live as stacked tensors keyed by parameter name; :meth:`member_state` and
    :meth:`load_member` convert one member's slice to and from ``torch.optim.Adam``'s state, so
    a member checkpoints as a single run does and a single run resumes it.
    """

    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(self, model: StackedVAE, lr: Sequence[float], weight_decay: Sequence[float],
                 grad_clip: Sequence[float | None], steps: Sequence[int]):
        self.model = model
        self.lr, self.weight_decay, self.grad_clip = list(lr), list(weight_decay), list(grad_clip)
        self.steps = list(steps)
        self.exp_avg = {k: torch.zeros_like(v) for k, v in model.params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in model.params.items()}

    def keep(self, slots: Sequence[int]) -> None:
        index = torch.as_tensor(list(slots), dtype=torch.long, device=next(iter(self.exp_avg.values())).device)
        self.exp_avg = {k: v.index_select(0, index) for k, v in self.exp_avg.items()}
        self.exp_avg_sq = {k: v.index_select(0, index) for k, v in self.exp_avg_sq.items()}
        for attr in ("lr", "weight_decay", "grad_clip", "steps"):
            setattr(self, attr, [getattr(self, attr)[i] for i in slots])

    @torch.no_grad()
    def _clip(self) -> None:
        """``clip_grad_norm_`` per member: each member's total gradient norm, its own limit."""
        if all(c is None for c in self.grad_clip):
            return
        grads = [p.grad for p in self.model.params.values()]
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)  # (P,)
        limit = torch.tensor([math.inf if c is None else c for c in self.grad_clip], device=norms.device)
        coef = (limit / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))

    @torch.no_grad()
    def step(self) -> None:
        self._clip()
        self.steps = [s + 1 for s in self.steps]
        params = list(self.model.params.values())
        if params[0].device.type in ("cpu", "cuda"):
            self._fused_step(params)
        else:
            self._plain_step()
        for p in params:
            p.grad = None

    def _fused_step(self, params: list[torch.Tensor]) -> None:
        """torch's own fused Adam kernel (what the single run uses) on each member's slices:
        one call per member, with its learning rate, weight decay and step count."""
        names = list(self.model.params)
        b1, b2 = self.betas
        for i in range(len(self.lr)):
            step = torch.tensor(float(self.steps[i]), dtype=torch.float32, device=params[0].device)
            torch._fused_adam_(
                [p[i] for p in params], [p.grad[i] for p in params],
                [self.exp_avg[n][i] for n in names], [self.exp_avg_sq[n][i] for n in names], [],
                [step] * len(params), amsgrad=False, lr=self.lr[i], beta1=b1, beta2=b2,
                weight_decay=self.weight_decay[i], eps=self.eps, maximize=False, grad_scale=None, found_inf=None,
            )

    def _plain_step(self) -> None:
        """The same update written out, broadcasting the per-member scalars."""
        b1, b2 = self.betas
        step_size = [lr / (1 - b1**s) for lr, s in zip(self.lr, self.steps)]
        bc2_sqrt = [math.sqrt(1 - b2**s) for s in self.steps]
        decay = any(self.weight_decay)
        for name, p in self.model.params.items():
            g = p.grad
            if decay:
                g = g + _per_member(self.weight_decay, p) * p
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / _per_member(bc2_sqrt, p)).add_(self.eps)
            p.sub_(_per_member(step_size, p) * m / denom)

    def load_member(self, slot: int, model: VAE, optimizer: torch.optim.Optimizer) -> None:
        """Take member ``slot``'s moments from its single-run ``optimizer`` (fresh: zeros)."""
        for name, p in model.named_parameters():
            state = optimizer.state.get(p)
            if state:
                self.exp_avg[name][slot].copy_(state["exp_avg"])
                self.exp_avg_sq[name][slot].copy_(state["exp_avg_sq"])

    def member_state(self, slot: int, model: VAE, optimizer: torch.optim.Optimizer) -> None:
        """Write member ``slot``'s moments and step count into its single-run ``optimizer``."""
        for name, p in model.named_parameters():
            optimizer.state[p] = {
                "step": torch.tensor(float(self.steps[slot]), dtype=torch.float32,
                                     device=p.device if optimizer.defaults.get("fused") else "cpu"),
                "exp_avg": self.exp_avg[name][slot].clone(),
                "exp_avg_sq": self.exp_avg_sq[name][slot].clone(),
            }


def optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """Steps a single-run Adam has taken (0 when fresh)."""
    for state in optimizer.state.values():
        return int(state["step"])
    return 0
