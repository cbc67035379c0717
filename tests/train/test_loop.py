"""The training loop: it learns, it is reproducible, it resumes, it stops on NaN."""

from __future__ import annotations

import logging

import pytest
import torch

from tests.conftest import small_config
from vae_search.data import load_data
from vae_search.errors import TrainingError
from vae_search.model import build_vae
from vae_search.schedules import BetaSchedule
from vae_search.train import train
from vae_search.train.outputs import load_model, write_run


class MemoryCheckpoint:
    def __init__(self):
        self.state = None
        self.saves = 0

    def load(self):
        return self.state

    def save(self, state):
        self.state = state
        self.saves += 1


@pytest.mark.parametrize("prior", ["standard", "mog", "vamp"])
def test_short_run_improves_the_elbo(prior):
    cfg = small_config(prior={"kind": prior, "components": 5}, epochs=4)
    seen = []
    result = train(cfg, on_epoch=seen.append)
    elbos = [m.elbo for m in result.history]
    # validation -ELBO at beta = 1 goes down from epoch 1 to the last one
    assert elbos[-1] < elbos[0] - 5
    assert [m.epoch for m in seen] == [1, 2, 3, 4]
    f = result.final
    # the IWAE bound is at least as tight as the ELBO (a smaller NLL), on average
    assert f["nll_iwae"] <= f["elbo"] + 0.5
    assert len(f["kl_per_dim"]) == 4 and 0 <= f["active_units"] <= 4


def test_beta_moves_every_step_and_follows_the_schedule():
    cfg = small_config(schedule={"kind": "linear", "beta": 10.0, "beta_start": 0.0, "rate": 1.0}, epochs=2)
    result = train(cfg)
    steps = 1080 // 64
    sched = BetaSchedule(cfg.schedule, cfg.epochs)
    # the reported beta is the one of the epoch's last step, not of its start
    assert result.history[0].beta == pytest.approx(sched((steps - 1) / steps))
    assert 0.9 < result.history[0].beta < 1.0


def test_same_seed_same_numbers_and_other_seed_differs():
    a = train(small_config(epochs=2)).final
    b = train(small_config(epochs=2)).final
    c = train(small_config(epochs=2, seed=1)).final
    assert a == b
    assert a["elbo"] != c["elbo"]


def test_resume_from_checkpoint_equals_an_uninterrupted_run():
    straight = train(small_config(epochs=3))
    ckpt = MemoryCheckpoint()

    class Killed(Exception):
        pass

    def die_after_two(m):
        if m.epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train(small_config(epochs=3), checkpoint=ckpt, on_epoch=die_after_two)
    assert ckpt.state["epoch"] == 2
    replayed = []
    resumed = train(small_config(epochs=3), checkpoint=ckpt, on_epoch=replayed.append)
    # the observer sees the restored epochs again, then the new one
    assert [m.epoch for m in replayed] == [1, 2, 3]
    assert resumed.final == straight.final


def test_corrupt_checkpoint_falls_back_to_a_fresh_start(caplog):
    class Broken:
        def load(self):
            raise EOFError("truncated file")

        def save(self, state):
            pass

    with caplog.at_level(logging.WARNING):
        result = train(small_config(epochs=2), checkpoint=Broken())
    assert "starting this run from scratch" in caplog.text
    assert result.final == train(small_config(epochs=2)).final


def test_non_finite_loss_names_epoch_and_step():
    cfg = small_config(
        model={"likelihood": "gaussian", "sigma": 1e-30}, optim={"lr": 1e30}, epochs=2
    )
    with pytest.raises(TrainingError, match=r"not finite at epoch 1, step \d+") as e:
        train(cfg)
    assert e.value.epoch == 1 and e.value.step >= 1


def test_an_exception_in_the_callback_stops_training():
    calls = []

    def stop(m):
        calls.append(m.epoch)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_config(epochs=5), on_epoch=stop)
    assert calls == [1]


def test_weights_round_trip_with_weights_only(tmp_path):
    cfg = small_config(epochs=1, images=True)
    data = load_data(cfg.data)
    result = train(cfg, data=data)
    write_run(result, tmp_path, data.val)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "config.yaml", "metrics.json", "model.pt", "reconstructions.png", "samples.png"
    }
    cfg2, model = load_model(tmp_path, data.shape)
    assert cfg2 == cfg
    x = data.val[:8]
    result.model.eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), result.model.encode(x))
        torch.testing.assert_close(model.decode(torch.zeros(2, 4)), result.model.decode(torch.zeros(2, 4)))
    # a fresh model differs, so the comparison above is not vacuous
    fresh = build_vae(small_config(seed=5), data.shape)
    assert not torch.allclose(fresh.encode(x)[0], model.encode(x)[0])


def test_devices_that_are_not_here_are_named_before_training(monkeypatch):
    import torch

    from vae_search.errors import ConfigError
    from vae_search.train.loop import device_problem, resolve_device

    assert device_problem("cpu") is None and device_problem("auto") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_problem("cuda") == "CUDA is not available here; use auto or cpu"
    with pytest.raises(ConfigError, match=r"device: 'cuda:0' asked for, but CUDA is not available"):
        resolve_device("cuda:0")
    # one visible GPU (CUDA_VISIBLE_DEVICES=3, say): cuda:1 does not exist, cuda:0 and cuda do
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert "only 1 CUDA device(s) are visible here" in device_problem("cuda:1")
    assert device_problem("cuda:0") is None and device_problem("cuda") is None


def test_a_checkpoint_from_another_device_type_resumes_with_a_new_batch_order(caplog):
    straight = train(small_config(epochs=3))

    def interrupted() -> MemoryCheckpoint:
        ckpt = MemoryCheckpoint()

        def die_after_two(m):
            if m.epoch == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(small_config(epochs=3), checkpoint=ckpt, on_epoch=die_after_two)
        return ckpt

    # written by a GPU worker (a CUDA generator's state is 16 bytes), resumed on a CPU
    ckpt = interrupted()
    ckpt.state["rng"].update(batches_device="cuda", batches=torch.zeros(16, dtype=torch.uint8),
                             cuda=torch.zeros(16, dtype=torch.uint8))
    with caplog.at_level(logging.INFO):
        resumed = train(small_config(epochs=3), checkpoint=ckpt)
    # the weights carry over (no restart), only epoch 3's batch order is drawn anew
    assert resumed.resumed_from == 2 and "starting this run from scratch" not in caplog.text
    assert "checkpoint written on cuda, resumed on cpu" in caplog.text
    elbos = [[m.elbo for m in r.history] for r in (resumed, straight)]
    assert elbos[0][:2] == elbos[1][:2] and elbos[0][2] != elbos[1][2]
    # a checkpoint written before the device was recorded is a CPU one, resumed exactly
    ckpt = interrupted()
    del ckpt.state["rng"]["batches_device"]
    assert train(small_config(epochs=3), checkpoint=ckpt).final == straight.final
