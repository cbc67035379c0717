"""The text benchmarks of the README, in one run: remedies for collapse on ``sentences``,
epochs saved by collapse pruning, and seconds per epoch of the LSTM-VAE against a plain loop.

1. Remedies: the same enqueued configurations of ``studies/text-quickstart.yaml`` (one per
   remedy and seed: none = constant β = 1; linear annealing; cyclical; free bits; word
   dropout) run once without any pruner; per remedy: share of trials collapsed (final active
   units below the threshold), best IWAE NLL, mean KL and active units.
2. The same configurations with the collapse pruner of the spec: epochs run with and without.
3. Seconds per epoch: ``vae_search.train`` of one LSTM-VAE config against a plain PyTorch loop
   of the same modules with a ``DataLoader`` and a ``pad_sequence`` collate, same batches, one
   process, alternating so both see the same machine load.

    python benchmarks/bench_text.py [--seeds 2] [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch
import yaml

from benchmarks._common import emit, epochs_run, quiet, spec_with
from vae_search import records
from vae_search.study.collapse import collapse_threshold
from vae_search.study.spec import StudySpec
from vae_search.workers.worker import WorkerOptions, open_study, run_worker

SPEC = Path(__file__).parents[1] / "studies" / "text-quickstart.yaml"
BASE = {"schedule.kind": "constant", "schedule.beta": 1.0, "schedule.free_bits": 0.0, "model.word_dropout": 0.0, "model.latent_dim": 8}
SPACE = {
    "schedule.kind": {"type": "categorical", "choices": ["constant", "linear", "cyclical"]},
    "schedule.beta": {"type": "float", "low": 0.5, "high": 4.0},
    "schedule.rate": {"type": "float", "low": 0.2, "high": 2.0, "when": {"schedule.kind": ["linear"]}},
    "schedule.free_bits": {"type": "float", "low": 0.0, "high": 0.5},
    "model.word_dropout": {"type": "float", "low": 0.0, "high": 0.6},
    "model.latent_dim": {"type": "int", "low": 4, "high": 16},
}
REMEDIES = {
    "none": {},
    "linear annealing": {"schedule.kind": "linear", "schedule.rate": 0.4},
    "cyclical": {"schedule.kind": "cyclical"},
    "free bits 0.25": {"schedule.free_bits": 0.25},
    "word dropout 0.4": {"model.word_dropout": 0.4},
}


def run_study(tmp: Path, name: str, seeds: int, epochs: int, prune: bool) -> optuna.Study:
    collapse = {"enabled": prune}  # otherwise the spec's rule
    spec = spec_with(SPEC, tmp, study=name, n_trials=None, pruner={"collapse": collapse},
                     run={"epochs": epochs})
    # the benchmark's own space: the remedies' keys (fixed by the enqueued values) and the
    # seed, so that repeats of one remedy are different runs
    raw = yaml.safe_load(Path(spec.source).read_text())
    raw["space"] = {**SPACE, "seed": {"type": "categorical", "choices": list(range(seeds))}}
    Path(spec.source).write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = StudySpec.from_file(spec.source)
    url = f"sqlite:///{tmp / (name + '.db')}"
    study, _ = open_study(spec, url, 0)
    for seed in range(seeds):
        for remedy, over in REMEDIES.items():
            study.enqueue_trial({**BASE, **over, "seed": seed}, user_attrs={"remedy": remedy})
    run_worker(spec, WorkerOptions(storage=url, artifact_dir=str(tmp / "art"), n_trials=seeds * len(REMEDIES)))
    return optuna.load_study(study_name=name, storage=url)


def remedy_table(study: optuna.Study) -> list[dict]:
    rows = []
    rule = StudySpec.from_file(SPEC).pruner.collapse  # the spec's rule: what "collapsed" means
    threshold = collapse_threshold(BASE["model.latent_dim"], rule.min_active_units, rule.min_active_fraction)
    for remedy in REMEDIES:
        ts = [t for t in study.trials if t.user_attrs.get("remedy") == remedy and records.has_record(t, 'final')]
        finals = [records.record(t, 'final') for t in ts]
        rows.append({
            "remedy": remedy, "trials": len(ts),
            "collapsed": sum(f["active_units"] < threshold for f in finals) / max(1, len(ts)),
            "best_nll": min(f["nll_iwae"] for f in finals),
            "kl": statistics.mean(f["kl"] for f in finals),
            "active_units": statistics.mean(f["active_units"] for f in finals),
            "ppl_iwae": min(f["ppl_iwae"] for f in finals),
        })
    return rows


def seconds_per_epoch(epochs: int) -> dict:
    """Our loop against a plain DataLoader + pad_sequence loop of the same modules."""
    from torch.nn.utils.rnn import pad_sequence
    from torch.utils.data import DataLoader

    from vae_search.config import RunConfig
    from vae_search.data import load_data
    from vae_search.model import build_vae
    from vae_search.train import train
    from vae_search.train.loop import sequence_info

    cfg = RunConfig.from_dict({
        "data": {"name": "sentences", "size": 3000, "max_len": 32},
        "model": {"arch": "lstm", "likelihood": "categorical", "embedding": 32, "hidden": [64], "latent_dim": 8},
        "eval": {"iwae_samples": 0, "max_examples": 2},
        "epochs": 1, "batch_size": 64, "device": "cpu", "threads": 1, "images": False,
    })
    torch.set_num_threads(1)
    data = load_data(cfg.data)
    seqs = [row[: int((row != data.pad_id).sum())] for row in data.train]  # unpadded, as a user has them

    def plain() -> float:
        torch.manual_seed(0)
        model = build_vae(cfg, data.shape, sequence_info(data))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = DataLoader(seqs, batch_size=64, shuffle=True, drop_last=True,
                            collate_fn=lambda b: pad_sequence(b, batch_first=True, padding_value=data.pad_id))
        t0 = time.perf_counter()
        for x in loader:
            out = model(x)
            loss = (out.kl - out.log_px).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    ours, theirs = [], []
    for _ in range(epochs):
        ours.append(train(cfg, data=data).history[0].train_seconds)
        theirs.append(plain())
    return {"vae_search_s_per_epoch": statistics.median(ours), "plain_loop_s_per_epoch": statistics.median(theirs),
            "ratio": statistics.median(ours) / statistics.median(theirs), "repeats": epochs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    quiet()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        free = run_study(Path(tmp), "text-free", args.seeds, args.epochs, prune=False)
        t1 = time.perf_counter()
        for row in remedy_table(free):
            emit(rows, row)
        pruned = run_study(Path(tmp), "text-pruned", args.seeds, args.epochs, prune=True)
        t2 = time.perf_counter()
        emit(rows, {"epochs_without_pruner": epochs_run(free), "epochs_with_pruner": epochs_run(pruned),
                    "pruned_for_collapse": sum(t.user_attrs.get("prune_reason") == "collapse" for t in pruned.trials),
                    "wall_without_s": round(t1 - t0, 1), "wall_with_s": round(t2 - t1, 1)})
    if not args.skip_speed:
        emit(rows, seconds_per_epoch(3))


if __name__ == "__main__":
    main()
