"""Reading a trial's artifact list back, robust to entries the dashboard has deleted.

``optuna.artifacts.get_all_artifact_meta`` fails on an artifact that was deleted in
optuna-dashboard (its metadata becomes ``null``); this listing skips such entries.
"""

from __future__ import annotations

import json
import logging

from optuna.artifacts import ArtifactMeta
from optuna.storages import BaseStorage

log = logging.getLogger(__name__)

ARTIFACTS_ATTR_PREFIX = "artifacts:"  # optuna.artifacts' key prefix in trial system attrs


def trial_artifacts(
    storage: BaseStorage, trial_id: int, *, mimetype_prefix: str = ""
) -> list[ArtifactMeta]:
    """The artifacts of a trial whose mimetype starts with ``mimetype_prefix``, in upload order."""
    out = []
    for key, raw in storage.get_trial_system_attrs(trial_id).items():
        if not key.startswith(ARTIFACTS_ATTR_PREFIX):
            continue
        try:
            meta = json.loads(raw) if isinstance(raw, str) else raw
            if not meta:
                continue  # deleted in the dashboard
            m = ArtifactMeta(
                artifact_id=meta["artifact_id"],
                filename=meta["filename"],
                mimetype=meta.get("mimetype") or "",
                encoding=meta.get("encoding"),
            )
        except (TypeError, KeyError, ValueError):
            log.debug("trial %d: unreadable artifact entry %s", trial_id, key)
            continue
        if m.mimetype.startswith(mimetype_prefix):
            out.append(m)
    return out
