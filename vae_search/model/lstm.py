"""The LSTM sentence VAE (Bowman et al. 2016), built through the factory interface.

- Encoder: token embedding -> LSTM over the whole sequence (packed, so padding never enters)
  -> last layer's final hidden state -> linear to (mu, logvar).
- Decoder: an autoregressive LSTM language model conditioned on z. z sets the initial state of
  every layer, c0 = W z and h0 = tanh(c0) (He et al. 2019, ``dec_lstm.py``), and with
  ``z_every_step`` is also concatenated to every input embedding. Teacher forcing: the inputs
  are x[:, :-1] (<bos> first), the outputs next-token logits for x[:, 1:].
- Word dropout (Bowman et al. 2016): while training, each decoder input after <bos> is
  replaced by <unk> with probability ``word_dropout`` (<pad> for ``tokens`` data, which have
  no <unk>), so the decoder must lean on z; 1.0 is the inputless decoder.

Options (the run config's ``model`` keys): ``hidden`` (one width per layer, all equal),
``embedding``, ``word_dropout``, ``z_every_step``. The modules are plain ``nn.Module``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from vae_search.errors import ConfigError


class LSTMEncoder(nn.Module):
    def __init__(self, vocab_size: int, embedding: int, hidden: int, layers: int, latent_dim: int, pad_id: int):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=pad_id)
        self.rnn = nn.LSTM(embedding, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = (x != self.pad_id).sum(-1).clamp_min(1).cpu()
        packed = pack_padded_sequence(self.embed(x), lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        mu, logvar = self.head(h[-1]).chunk(2, dim=-1)
        return mu, logvar


class LSTMDecoder(nn.Module):
    def __init__(self, vocab_size: int, embedding: int, hidden: int, layers: int, latent_dim: int, *,
                 pad_id: int, bos_id: int, eos_id: int | None, drop_id: int, word_dropout: float,
                 z_every_step: bool):
        super().__init__()
        self.layers, self.hidden = layers, hidden
        self.pad_id, self.bos_id, self.eos_id, self.drop_id = pad_id, bos_id, eos_id, drop_id
        self.word_dropout, self.z_every_step = word_dropout, z_every_step
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=pad_id)
        self.init = nn.Linear(latent_dim, layers * hidden)
        self.rnn = nn.LSTM(embedding + (latent_dim if z_every_step else 0), hidden, num_layers=layers,
                           batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.init(z).view(z.shape[0], self.layers, self.hidden).transpose(0, 1).contiguous()
        return torch.tanh(c), c

    def step_inputs(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        e = self.embed(tokens)
        if self.z_every_step:
            e = torch.cat([e, z.unsqueeze(1).expand(-1, tokens.shape[1], -1)], dim=-1)
        return e

    def forward(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        if x is None:
            raise ValueError("the LSTM decoder needs x for teacher forcing; use generate(z) to sample")
        tokens = x[:, :-1]
        if self.training and self.word_dropout > 0:
            drop = torch.rand(tokens.shape, device=tokens.device) < self.word_dropout
            drop[:, 0] = False  # <bos> stays
            tokens = tokens.masked_fill(drop & (tokens != self.pad_id), self.drop_id)
        h, _ = self.rnn(self.step_inputs(tokens, z), self.initial_state(z))
        return self.out(h)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """Greedy decoding from z: (B, steps + 1) ids, <bos> first, <pad> after each <eos>."""
        b = z.shape[0]
        tok = torch.full((b, 1), self.bos_id, dtype=torch.long, device=z.device)
        state = self.initial_state(z)
        out, done = [tok], torch.zeros(b, dtype=torch.bool, device=z.device)
        for _ in range(steps):
            h, state = self.rnn(self.step_inputs(tok, z), state)
            tok = self.out(h).argmax(-1)
            tok = tok.masked_fill(done.unsqueeze(1), self.pad_id)
            out.append(tok)
            if self.eos_id is not None:
                done |= tok.squeeze(1) == self.eos_id
                if bool(done.all()):
                    break
        return torch.cat(out, dim=1)


def build_lstm(ctx: Any) -> tuple[nn.Module, nn.Module]:
    """Factory of ``model.arch: lstm`` (``ctx`` is a :class:`~vae_search.model.factory.ModelContext`)."""
    seq = ctx.sequence
    if seq is None:
        raise ConfigError("model.arch 'lstm': needs token data (data.name: tokens, text or sentences)")
    o = ctx.options
    hidden = list(o.get("hidden", [256]))
    width, layers, emb = int(hidden[0]), len(hidden), int(o.get("embedding", 128))
    drop_id = seq.unk_id if seq.unk_id is not None else seq.pad_id
    enc = LSTMEncoder(seq.vocab_size, emb, width, layers, ctx.latent_dim, seq.pad_id)
    dec = LSTMDecoder(seq.vocab_size, emb, width, layers, ctx.latent_dim, pad_id=seq.pad_id, bos_id=seq.bos_id,
                      eos_id=seq.eos_id, drop_id=drop_id, word_dropout=float(o.get("word_dropout", 0.0)),
                      z_every_step=bool(o.get("z_every_step", True)))
    return enc, dec
