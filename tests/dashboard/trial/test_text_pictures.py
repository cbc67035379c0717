"""Text pictures of an LSTM VAE trial: reconstructions, prior samples and interpolations are
greedy decodes, rendered to PNG, and published for a token-data trial."""

from __future__ import annotations

import torch

from vae_search.config import RunConfig
from vae_search.dashboard.trial import text_pictures as tx
from vae_search.data import load_data
from vae_search.data.tokens import decode
from vae_search.model import build_vae
from vae_search.train.loop import sequence_info


def lstm():
    cfg = RunConfig.from_dict({"data": {"name": "sentences", "size": 100},
                               "model": {"arch": "lstm", "likelihood": "categorical", "hidden": [8],
                                         "embedding": 4, "latent_dim": 3}})
    data = load_data(cfg.data)
    torch.manual_seed(0)
    return build_vae(cfg, data.shape, sequence_info(data)), data


def test_reconstructions_pair_each_input_with_the_greedy_decode_of_its_mean():
    model, data = lstm()
    x = data.val[:4]
    pairs = tx.reconstructions(model, x, data)
    mu, _ = model.encode(x)
    # a second route to the same decode: generate from mu by hand, row by row
    for (src, out), row, m in zip(pairs, x, mu):
        assert src == decode(row.tolist(), data.vocab)
        assert out == decode(model.decoder.generate(m[None], data.shape[0] - 1)[0].tolist(), data.vocab)


def test_interpolations_start_and_end_at_the_two_sentences_decodes():
    model, data = lstm()
    a, b = data.val[0], data.val[1]
    lines = tx.interpolations(model, a, b, data, steps=5)
    ends = tx.reconstructions(model, torch.stack([a, b]), data)
    assert len(lines) == 5 and lines[0] == ends[0][1] and lines[-1] == ends[1][1]


def test_pictures_are_pngs_of_text():
    model, data = lstm()
    pics = tx.pictures(model, data, seed=0, n=4)
    assert sorted(pics) == ["interpolations.png", "reconstructions.png", "samples.png"]
    for draw in pics.values():
        img = draw()
        # white background with dark text on it
        assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255)
        assert img.convert("L").getextrema()[0] < 128


def test_a_token_data_trial_publishes_its_text_pictures(tmp_path):
    import optuna
    from optuna.artifacts import FileSystemArtifactStore

    from vae_search.dashboard.artifacts import trial_artifacts
    from vae_search.dashboard.trial.publish import publish_trial

    model, data = lstm()
    cfg = RunConfig.from_dict({"data": {"name": "sentences", "size": 100},
                               "model": {"arch": "lstm", "likelihood": "categorical", "latent_dim": 3}})
    study = optuna.create_study()
    trial = study.ask()
    trial.set_user_attr("latent_dim", 3)
    trial.set_user_attr("active_units", [1])
    history = {"beta": [1.0], "elbo": [30.0], "recon": [29.0], "kl": [1.0], "mutual_info": [0.5],
               "kl_per_dim": [[0.5, 0.3, 0.2]], "seconds": [1.0]}
    (tmp_path / "art").mkdir()
    publish_trial(trial, FileSystemArtifactStore(str(tmp_path / "art")), config=cfg, history=history,
                  model=model, data=data, outcome="complete", detail={"final": {}, "value": 30.0})
    names = sorted(m.filename for m in trial_artifacts(study._storage, trial._trial_id, mimetype_prefix="image/png"))
    # the curves and KL heatmap as for images, and the three text pictures
    assert names == ["curves.png", "interpolations.png", "kl-per-dim.png", "reconstructions.png", "samples.png"]
