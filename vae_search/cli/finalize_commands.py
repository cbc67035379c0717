"""``vae-search finalize``: re-train the search's top configurations with several seeds and
evaluate them on the test split."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from vae_search.cli.search_commands import _artifact_opt, _load_study, _storage_opt
from vae_search.errors import VaeSearchError


@click.command("finalize")
@click.argument("study")
@_storage_opt
@_artifact_opt
@click.option("--top", type=int, default=5, show_default=True,
              help="Configurations to finalize: the study's best (or its Pareto front's first).")
@click.option("--seeds", type=int, default=5, show_default=True, help="Runs per configuration, each with its own seed.")
@click.option("--k", "k", type=int, default=5000, show_default=True, help="IWAE samples of the final NLL bound.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Local worker processes (0: only enqueue, for workers started elsewhere).")
@click.option("--spec-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the finalists' study spec (default STUDY.final.yaml).")
@click.pass_context
def finalize_cmd(ctx: click.Context, study: str, storage: str | None, artifact_dir: str | None, top: int,
                 seeds: int, k: int, split: str, workers: int, spec_out: Path | None) -> None:
    """Re-train the top configurations of STUDY with --seeds seeds each, as the trials of the
    linked study STUDY.final in the same storage, evaluate each on the test split with the IWAE
    bound at --k, and print per configuration the mean, sd and 95% Student t interval (n - 1
    degrees of freedom) of the NLL over seeds, ranked by the mean.

    Workers anywhere join with `vae-search worker STUDY.final.yaml --storage URL`, with the
    same retry, resume and budget guarantees as a search; run again, it resumes.
    """
    from vae_search.results.finalists import choose_finalists, format_finalists, store_finalists
    from vae_search.storage import redact
    from vae_search.workers.finalize import prepare_finalists

    if top < 1:
        raise VaeSearchError(f"--top: must be at least 1 (configurations to finalize), got {top}")
    s, url = _load_study(study, storage)
    out = spec_out or Path(f"{study}.final.yaml")
    spec = prepare_finalists(s, choose_finalists(s, top), url, seeds=seeds, k=k, split=split, spec_out=out)
    secret = redact(url) != url
    click.echo("workers elsewhere:\n  " + shlex.join(
        ["vae-search", "worker", str(out), *([] if secret else ["--storage", url])]))
    if workers:
        from vae_search.cli.search_commands import _launch

        codes = _launch(ctx, out, workers, None, 1, url, artifact_dir, None)
        if any(codes):
            raise VaeSearchError(f"worker exit codes {codes}; see the log lines above")
    final, _ = _load_study(spec.study, url)
    click.echo(format_finalists(store_finalists(final)))


COMMANDS = [finalize_cmd]
