"""Per-epoch checkpoints of a trial in Optuna's artifact store, so a retried trial resumes.

The pattern of optuna-examples ``pytorch/pytorch_checkpoint.py``: after an epoch the run's
state is uploaded as an artifact and its id kept in the trial's record ``checkpoint`` (the
system attribute ``vae_search:checkpoint``, see :mod:`vae_search.records`)
(after every epoch, or, with the spec's ``storage.checkpoint_interval``, when that many seconds
have passed since the last checkpoint).
When a killed worker's trial is failed by the heartbeat and re-created, Optuna copies its
system attributes to the retry, so the retry finds the last checkpoint of the original and
resumes (a trial of an older study kept the id in its user attributes, which Optuna copies too).
The previous epoch's artifact is removed once the new one is stored.

Artifacts live in a directory every worker can reach (``--artifact-dir`` or
``VAE_SEARCH_ARTIFACTS``, default ``./artifacts``): on many machines, a shared file system.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from vae_search import records
from vae_search.train import CheckpointError

log = logging.getLogger(__name__)

CHECKPOINT_ATTR = records.key(records.CHECKPOINT)
DEFAULT_ARTIFACT_DIR = "artifacts"


def resolve_artifact_dir(cli_value: str | os.PathLike[str] | None) -> Path:
    """``--artifact-dir``, else ``VAE_SEARCH_ARTIFACTS``, else ``./artifacts``."""
    return Path(cli_value or os.environ.get("VAE_SEARCH_ARTIFACTS") or DEFAULT_ARTIFACT_DIR)


class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
    """Optuna's file store, whose :meth:`write` never shows half a file: it writes
    ``ID.partial`` and renames it to ``ID`` (replacing what was there: a picture's placeholder).
    A reader, on this machine or another sharing the directory, sees the old file or the new."""

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        path = self._get_filepath(artifact_id)  # Optuna's own check of the id
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "wb") as f:
                shutil.copyfileobj(content_body, f)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


def artifact_store(directory: Path) -> FileSystemArtifactStore:
    directory.mkdir(parents=True, exist_ok=True)
    return AtomicFileSystemArtifactStore(str(directory))


class TrialCheckpoint:
    """A :class:`vae_search.train.Checkpoint` backed by the artifact store of a live trial."""

    def __init__(self, trial: optuna.Trial, store: FileSystemArtifactStore, interval: float = 0.0):
        self.trial = trial
        self.store = store
        self.interval = interval  # seconds between two checkpoints (0: every epoch)
        self._last = time.monotonic()
        self._uploaded: set[str] = set()  # artifacts of this trial (a retry inherits others')
        self._current: str | None = None
        self._read = False

    def current(self) -> str | None:
        """The id of the trial's last checkpoint (inherited by a retry), read once."""
        if not self._read:
            self._current = records.record(self.trial._get_latest_trial(), records.CHECKPOINT)
            self._read = True
        return self._current

    def load(self) -> dict[str, Any] | None:
        artifact_id = self.current()
        if artifact_id is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.pt"
            try:
                download_artifact(
                    artifact_store=self.store, artifact_id=artifact_id, file_path=str(path)
                )
            except ArtifactNotFound as e:
                raise CheckpointError(
                    f"checkpoint {artifact_id} of trial {self.trial.number} is missing from "
                    "the artifact store"
                ) from e
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # torch's own messages run to a paragraph: keep a sentence
                first = str(e).strip().split(". ")[0].splitlines()[0] if str(e).strip() else ""
                raise CheckpointError(
                    f"checkpoint {artifact_id} of trial {self.trial.number} is truncated or "
                    f"corrupt ({type(e).__name__}: {first})"
                ) from e
        log.info(
            "trial %d: found the checkpoint of epoch %d", self.trial.number, state.get("epoch", -1)
        )
        return state

    def save(self, state: dict[str, Any]) -> None:
        if time.monotonic() - self._last < self.interval:
            return  # too soon after the last one: a retry redoes at most `interval` seconds
        self._last = time.monotonic()
        previous = self.current()
        buf = io.BytesIO()
        torch.save(state, buf)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"checkpoint-epoch{state['epoch']}.pt"
            path.write_bytes(buf.getvalue())
            artifact_id = upload_artifact(
                artifact_store=self.store,
                file_path=str(path),
                study_or_trial=self.trial,
                mimetype="application/octet-stream",
            )
        records.write(self.trial, records.CHECKPOINT, artifact_id)
        self._current = artifact_id
        # the original of a retried trial still points at ``previous``; keep it until this
        # trial has its own checkpoint, then drop the older file
        if previous is not None and previous != artifact_id:
            try:
                self.store.remove(previous)
            except Exception:  # already gone: nothing to clean
                log.debug("checkpoint %s was already removed", previous)
            if previous in self._uploaded:
                # drop it from this trial's artifact list too (what optuna-dashboard's own
                # delete writes), so the dashboard lists only the live checkpoint
                self.trial.storage.set_trial_system_attr(self.trial._trial_id, f"artifacts:{previous}", "null")
        self._uploaded.add(artifact_id)
