"""Put one trial's pictures and a note into optuna-dashboard, from inside the objective.

A trial's pictures are PNG artifacts: training curves, KL per latent dimension and, when the
trained model and image data are at hand, reconstructions, prior samples and, for ``shapes``,
latent traversals; for token data the reconstructions, samples and interpolations are text
(:mod:`vae_search.dashboard.trial.text_pictures`). Its note is Markdown saying how it ended.

Two steps, so the drawing can leave the trial's critical path:

- :func:`plan_trial`, while the trial is still running (Optuna refuses artifact records on a
  finished trial): writes each picture's artifact record, a "picture not written" placeholder
  file under its id (:func:`not_written_png`) and the note; returns the job that draws them;
- that job, any time later and on any thread (the worker runs it after the trial is told, see
  :class:`~vae_search.workers.hooks.AfterTell`): draws each picture and replaces its
  placeholder (the worker's store writes ``ID.partial`` and renames it, so a reader never sees
  half a file). A worker killed before the job ran leaves the placeholders, which the report
  and the dashboard show as they are.

:func:`publish_trial` does both at once. Neither ever raises: a picture must never fail a trial.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import optuna
import torch
from optuna.artifacts._protocol import ArtifactStore
from PIL import Image, ImageDraw

from vae_search import records
from vae_search.config import RunConfig
from vae_search.dashboard.artifacts import ARTIFACTS_ATTR_PREFIX
from vae_search.dashboard.trial import trial_pictures as tp
from vae_search.dashboard.trial.notes import CollapseRule, beta_phrase, beta_reached, trial_note
from vae_search.data import DataSplits
from vae_search.model import VAE

log = logging.getLogger(__name__)

OUTCOMES = ("complete", "pruned", "failed")
# file names of the artifacts, in the order the report shows them
PICTURES = ("curves.png", "kl-per-dim.png", "reconstructions.png", "samples.png", "traversals.png")
# token data's text pictures add this one (the report shows it after the others)
TEXT_PICTURES = ("interpolations.png",)


def publish_trial(
    trial: optuna.Trial,
    store: ArtifactStore | None,
    *,
    config: RunConfig,
    history: Mapping[str, Any],
    model: VAE | None,
    data: DataSplits | None,
    outcome: str,
    detail: Mapping[str, Any],
) -> None:
    """Upload the trial's pictures to ``store`` and save its dashboard note now (both steps of
    :func:`plan_trial`). Never raises."""
    plan_trial(trial, store, config=config, history=history, model=model, data=data,
               outcome=outcome, detail=detail)()


def plan_trial(
    trial: optuna.Trial,
    store: ArtifactStore | None,
    *,
    config: RunConfig,
    history: Mapping[str, Any],
    model: VAE | None,
    data: DataSplits | None,
    outcome: str,
    detail: Mapping[str, Any],
) -> Callable[[], None]:
    """Record the trial's pictures in ``store`` (placeholders) and save its note; return the
    job that draws the pictures (see the module docstring). Never raises, nor does the job.

    Args:
        trial: the live trial (still running).
        store: the artifact store the dashboard reads (None: the note only).
        config: the trial's resolved run config.
        history: the per-epoch lists (``beta``, ``elbo``, ``recon``, ``kl``, ``mutual_info``,
            ``kl_per_dim``, ``seconds``; ``active_units`` if present, else the trial's user
            attribute of that name).
        model: the trained model, or None (pruned or failed: only curves and the KL heatmap).
        data: the dataset, or None.
        outcome: ``complete``, ``pruned`` or ``failed``.
        detail: how it ended, with the user-attribute names: ``prune_reason``,
            ``pruned_epoch``, ``pruned_active_units`` (pruned), ``fail_reason`` (failed),
            ``final`` (complete). Missing keys are read from the trial's records.
    """
    start = time.perf_counter()
    number = getattr(trial, "number", -1)
    info: dict[str, Any] = {}
    au: list[int] = []
    planned: list[tuple[str, str, Callable[[], Image.Image]]] = []
    try:
        info = {**_records(trial), **dict(detail)}
        if outcome not in OUTCOMES:
            log.warning("trial %s: unknown outcome %r", number, outcome)
        au = list(history.get("active_units") or info.get("active_units") or [])
        if store is not None:
            pictures = _pictures(number, config, history, au, model, data, outcome, info)
            planned = _register(trial, store, pictures)
    except Exception:  # noqa: BLE001 - never fail a trial for a picture
        log.warning("trial %s: could not publish its pictures", number, exc_info=True)
    try:  # the note does not depend on the pictures
        rule = CollapseRule.of(getattr(getattr(trial, "study", None), "pruner", None))
        note = trial_note(
            number, config, history, au, outcome, info, value=info.get("value"), rule=rule
        )
        _save_note(trial, note)
    except Exception:  # noqa: BLE001
        log.warning("trial %s: could not save its note", number, exc_info=True)
    log.debug("trial %s: pictures recorded and note saved in %.2fs", number, time.perf_counter() - start)

    def draw() -> None:
        t0 = time.perf_counter()
        for name, artifact_id, picture in planned:
            try:
                _write(store, artifact_id, picture())  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - one bad picture must not stop the others
                log.warning("trial %s: picture %s failed", number, name, exc_info=True)
        log.debug("trial %s: %d pictures drawn in %.2fs", number, len(planned), time.perf_counter() - t0)

    return draw


NOTE_RECORDS = (
    records.ACTIVE_UNITS, records.FINAL, records.PRUNE_REASON, records.PRUNED_EPOCH,
    records.PRUNED_ACTIVE_UNITS, records.FAIL_REASON,
)


def _records(trial: optuna.Trial) -> dict[str, Any]:
    """The trial's records a note reads (through :mod:`vae_search.records`)."""
    try:
        frozen = trial._get_latest_trial() if hasattr(trial, "_get_latest_trial") else trial
        return {k: records.record(frozen, k) for k in NOTE_RECORDS if records.has_record(frozen, k)}
    except Exception:  # noqa: BLE001 - a storage hiccup leaves only what the caller passed
        return {}


def _pictures(
    number: int,
    config: RunConfig,
    history: Mapping[str, Any],
    au: list[int],
    model: VAE | None,
    data: DataSplits | None,
    outcome: str,
    info: Mapping[str, Any],
) -> dict[str, Callable[[], Image.Image]]:
    """The pictures this trial can have, by file name, each drawn when called."""
    d = config.model.latent_dim
    sub = _subtitle(config, history, outcome, info)
    kl = list(history.get("kl_per_dim") or [])
    out: dict[str, Callable[[], Image.Image]] = {
        "curves.png": lambda: tp.training_curves(
            history,
            latent_dim=d,
            active_units=au,
            title=f"trial {number}: training curves",
            subtitle=sub,
            eval_batch=config.eval.batch_size,
        ),
        "kl-per-dim.png": lambda: tp.kl_heatmap(
            kl,
            active_units=au,
            unit_variance=tp.last_unit_variance(history, info.get("final") or {}),
            au_threshold=config.eval.au_threshold,
            title=f"trial {number}: KL per latent dimension",
            subtitle=sub,
        ),
    }
    if model is not None and data is not None and data.is_tokens:  # text, rendered as PNG
        from vae_search.dashboard.trial import text_pictures

        out.update(text_pictures.pictures(model, data, seed=config.seed))
        return out
    if model is None or data is None or not data.is_image:
        return out
    x = data.val[:64]
    out["reconstructions.png"] = lambda: tp.reconstructions(model, x)
    out["samples.png"] = lambda: tp.prior_samples(model, seed=config.seed)
    if data.factor_names:  # shapes: traversals of one example
        i, label = _example(data)
        out["traversals.png"] = lambda: tp.traversal_picture(
            model, data.val[i], x, kl_last=kl[-1] if kl else None, example=label
        )
    return out


def _subtitle(
    config: RunConfig, history: Mapping[str, Any], outcome: str, info: Mapping[str, Any]
) -> str:
    """How the trial ended and its collapse-relevant settings, on one line."""
    p = config.prior
    prior = p.kind + (f" ({p.components} components)" if p.kind != "standard" else "")
    sched = beta_phrase(config.schedule, beta_reached(history, info.get("final")))
    end = outcome
    if outcome == "pruned":
        end = (
            f"pruned for {info.get('prune_reason', '?')} at epoch {info.get('pruned_epoch', '?')}"
            f" ({info.get('pruned_active_units', '?')}/{config.model.latent_dim} active)"
        )
    return f"{end}; latent size {config.model.latent_dim}, prior {prior}, {sched}"


def _example(data: DataSplits) -> tuple[int, str]:
    """A validation example to traverse (the largest shape among the first 64) and its label."""
    names = list(data.factor_names)
    f = data.val_factors
    if f is None or len(f) == 0:
        return 0, ""
    head = f[:64]
    i = int(torch.argmax(head[:, names.index("scale")])) if "scale" in names else 0
    parts = []
    for name, v in zip(names, f[i].tolist()):
        if name == "shape":
            from vae_search.data.shapes import SHAPE_NAMES

            parts.append(SHAPE_NAMES[int(v)] if 0 <= int(v) < len(SHAPE_NAMES) else f"shape {v:g}")
        else:
            parts.append(f"{name} {v:.2f}")
    return i, f"validation example {i}: " + ", ".join(parts)


NOT_WRITTEN = "picture not written"


@functools.cache
def not_written_png() -> bytes:
    """The placeholder a recorded picture holds until it is drawn: "picture not written"."""
    img = Image.new("RGB", (240, 60), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 239, 59), outline=(170, 68, 0))
    draw.text((12, 14), NOT_WRITTEN, fill=(170, 68, 0))
    draw.text((12, 32), "(its worker stopped first)", fill=(102, 102, 102))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _register(
    trial: optuna.Trial, store: ArtifactStore, pictures: Mapping[str, Callable[[], Image.Image]]
) -> list[tuple[str, str, Callable[[], Image.Image]]]:
    """Give each picture an artifact id, its placeholder file and its record (the trial's
    ``artifacts:ID`` system attribute, as ``optuna.artifacts.upload_artifact`` writes it);
    return ``(name, id, draw)`` for each."""
    out = []
    for name, draw in pictures.items():
        artifact_id = str(uuid.uuid4())
        store.write(artifact_id, io.BytesIO(not_written_png()))
        meta = {"artifact_id": artifact_id, "filename": name, "mimetype": "image/png", "encoding": None}
        trial.storage.set_trial_system_attr(trial._trial_id, ARTIFACTS_ATTR_PREFIX + artifact_id, json.dumps(meta))
        out.append((name, artifact_id, draw))
    return out


def _write(store: ArtifactStore, artifact_id: str, picture: Image.Image) -> None:
    buf = io.BytesIO()
    picture.save(buf, format="PNG", optimize=False)
    buf.seek(0)
    store.write(artifact_id, buf)


def _save_note(trial: optuna.Trial, body: str) -> None:
    """``optuna_dashboard.save_note`` with one read of the study's system attributes, not two.

    Notes live in the study's system attributes, so each read returns every note of the study:
    on PostgreSQL about 36 ms at 1,000 trials, and ``save_note`` reads twice (the version, then
    the chunks to clear). Here one read gives both; the keys are the dashboard's own.
    """
    try:
        from optuna_dashboard._note import note_str_key_prefix, note_ver_key, split_body
    except ImportError:  # the dashboard's layout moved: its public call still works
        from optuna_dashboard import save_note

        save_note(trial, body)
        return
    storage, study_id, trial_id = trial.storage, trial.study._study_id, trial._trial_id
    attrs = storage.get_study_system_attrs(study_id)
    prefix = note_str_key_prefix(trial_id)
    old_chunks = sum(k.startswith(prefix) for k in attrs)
    storage.set_study_system_attr(study_id, note_ver_key(trial_id), attrs.get(note_ver_key(trial_id), 0) + 1)
    chunks = split_body(body, trial_id)
    for k, v in chunks.items():
        storage.set_study_system_attr(study_id, k, v)
    for i in range(len(chunks), old_chunks):  # a longer earlier note (edited in the dashboard)
        storage.set_study_system_attr(study_id, f"{prefix}{i}", "")
