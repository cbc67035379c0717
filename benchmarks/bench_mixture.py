"""What the float64 mixture log-density costs and buys, in one run.

``vae_search.model.gaussian.log_mixture`` expands the quadratic form into matrix products and
computes it in float64 (outside autocast), because in float32 the expansion cancels badly with
sharp components. This measures, against the float32 expansion it replaced:

1. error: the largest |log p(z) - reference| over z near 50 components of variance e^v in 32
   dimensions, the reference from ``torch.distributions`` in float64;
2. cost: milliseconds per training step (forward, backward, Adam) of the MNIST MLP
   (784-400, latent 40, batch 128, Bernoulli) with a VampPrior and a MoG of K components, and
   with the standard prior as the control; the two variants alternate, best of two rounds.

    python benchmarks/bench_mixture.py [--components 500] [--steps 40] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from torch import distributions as D

from vae_search.config import RunConfig
from vae_search.model import build_vae, gaussian, priors
from vae_search.model.vae import vae_loss


def float32_expansion(z, log_w, mu, logvar):
    """The previous log_mixture: the same expansion in the inputs' precision."""
    inv_var = torch.exp(-logvar)
    d = z.shape[-1]
    const = -0.5 * (d * gaussian.LOG_2PI + logvar.sum(-1) + (mu.pow(2) * inv_var).sum(-1))
    quad = z.pow(2) @ inv_var.T - 2.0 * (z @ (mu * inv_var).T)
    return torch.logsumexp(log_w + const - 0.5 * quad, dim=-1)


VARIANTS = {"float32": float32_expansion, "float64": gaussian.log_mixture}


def max_error(fn, logvar: float, autocast: bool) -> float:
    torch.manual_seed(0)
    k, d = 50, 32
    mu = 3.0 * torch.randn(k, d)
    lv = torch.full((k, d), logvar) + 0.1 * torch.randn(k, d)
    log_w = torch.randn(k).log_softmax(-1)
    z = mu[torch.randint(k, (256,))] + torch.exp(0.5 * lv[:1]) * torch.randn(256, d)
    ref = D.MixtureSameFamily(
        D.Categorical(logits=log_w.double()),
        D.Independent(D.Normal(mu.double(), torch.exp(0.5 * lv.double())), 1),
    ).log_prob(z.double())
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        got = fn(z, log_w, mu, lv)
    return float((got.double() - ref).abs().max())


def ms_per_step(kind: str, components: int, steps: int, device: str) -> dict[str, float]:
    cfg = RunConfig.from_dict({
        "model": {"hidden": [400], "latent_dim": 40},
        "prior": {"kind": kind, "components": components},
    })
    torch.manual_seed(0)
    model = build_vae(cfg, (1, 28, 28)).to(device)
    opt = torch.optim.Adam(model.parameters())
    x = torch.rand(128, 1, 28, 28, device=device).bernoulli()
    best: dict[str, float] = {}
    for _ in range(2):
        for name, fn in VARIANTS.items():
            priors.log_mixture = fn  # what MixturePrior.log_prob calls
            for i in range(steps + 5):
                if i == 5:
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                loss = vae_loss(model(x), 1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            ms = (time.perf_counter() - start) / steps * 1000
            best[name] = min(best.get(name, float("inf")), ms)
    priors.log_mixture = gaussian.log_mixture
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--components", type=int, default=500)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))
    for logvar, autocast in ((-4.0, False), (-8.0, False), (-12.0, False), (-2.0, True), (-4.0, True)):
        row = {"variance": f"e^{logvar:g}", "autocast_bf16": autocast}
        row.update({f"max_error_{n}": round(max_error(f, logvar, autocast), 6) for n, f in VARIANTS.items()})
        print(json.dumps(row))
    for kind in ("vamp", "mog", "standard"):
        ms = ms_per_step(kind, args.components, args.steps, args.device)
        print(json.dumps({"prior": kind, "components": args.components,
                          **{f"ms_per_step_{n}": round(v, 2) for n, v in ms.items()},
                          "ratio": round(ms["float64"] / ms["float32"], 3)}))


if __name__ == "__main__":
    main()
