"""Training: the loop, its batcher, and what a run writes to disk."""

from vae_search.train.loop import (
    Checkpoint,
    CheckpointError,
    EpochMetrics,
    RunResult,
    resolve_device,
    train,
)

__all__ = ["Checkpoint", "CheckpointError", "EpochMetrics", "RunResult", "resolve_device", "train"]
