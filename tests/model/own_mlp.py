"""A second, independent implementation of the stock MLP VAE, loaded by file path in tests.

Written from the maths, not from vae_search.model.networks: Linear layers created in the same
order and shapes (so a seeded run draws the same initial weights), ReLU between them.
"""

import math

from torch import nn


class Enc(nn.Module):
    def __init__(self, d_in, hidden, latent):
        super().__init__()
        self.l1, self.l2 = nn.Linear(d_in, hidden), nn.Linear(hidden, 2 * latent)

    def forward(self, x):
        h = self.l2(self.l1(x.reshape(x.shape[0], -1)).relu())
        return h[:, : h.shape[1] // 2], h[:, h.shape[1] // 2 :]


class Dec(nn.Module):
    def __init__(self, shape, hidden, latent):
        super().__init__()
        self.shape = shape
        self.l1, self.l2 = nn.Linear(latent, hidden), nn.Linear(hidden, math.prod(shape))

    def forward(self, z, x=None):
        return self.l2(self.l1(z).relu()).reshape(z.shape[0], *self.shape)


def build(ctx):
    h = ctx.options["hidden"]
    return Enc(math.prod(ctx.event_shape), h, ctx.latent_dim), Dec(tuple(ctx.event_shape), h, ctx.latent_dim)


def not_a_pair(ctx):
    return nn.Linear(2, 2)


def raises(ctx):
    raise ValueError("width must be even")


def wrong_latent(ctx):
    enc, dec = build(ctx)
    enc.l2 = nn.Linear(ctx.options["hidden"], 2 * ctx.latent_dim + 2)
    return enc, dec


def wrong_output(ctx):
    enc, dec = build(ctx)
    dec.shape = (math.prod(ctx.event_shape),)
    return enc, dec
