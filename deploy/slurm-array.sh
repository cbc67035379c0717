#!/usr/bin/env bash
# A Slurm job array of vae-search workers: one GPU each, all on one PostgreSQL study.
#
#   mkdir -p logs && sbatch --array=0-7 deploy/slurm-array.sh studies/mnist.yaml
#
# Before: vae-search installed in $VENV on the shared file system; the database URL WITHOUT a
# password in ~/.config/vae-search/storage (e.g. postgresql://vae@db-host:5432/vae_search) and
# the password in ~/.pgpass (chmod 600; line "db-host:5432:vae_search:vae:PASSWORD"), which
# libpq reads by itself: no password on a command line, in the job script or in its log.
# Artifacts (checkpoints, pictures) go to $VAE_SEARCH_ARTIFACTS on the shared file system.
# Optionally create the study once first: vae-search create-study SPEC.
#
# Time limit: Slurm sends SIGTERM 5 minutes before it (--signal), the worker finishes its
# trial and exits; a trial cut off anyway is failed by the heartbeat and retried elsewhere
# from its last checkpoint. Requeued or restarted array tasks simply join the study again.
#
#SBATCH --job-name=vae-search
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=12:00:00
#SBATCH --signal=B:TERM@300
#SBATCH --requeue
#SBATCH --output=logs/vae-search-%A_%a.log
set -euo pipefail

SPEC="${1:?usage: sbatch --array=0-N deploy/slurm-array.sh STUDY_SPEC.yaml}"
VENV="${VENV:-$HOME/vae-search/.venv}"
STORAGE_FILE="${STORAGE_FILE:-$HOME/.config/vae-search/storage}"

export VAE_SEARCH_STORAGE="${VAE_SEARCH_STORAGE:-$(cat "$STORAGE_FILE")}"
export VAE_SEARCH_ARTIFACTS="${VAE_SEARCH_ARTIFACTS:-$HOME/vae-search/artifacts}"
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"

# exec: the worker is the batch shell, so the --signal above reaches it directly.
exec "$VENV/bin/vae-search" worker "$SPEC" \
    --index "${SLURM_ARRAY_TASK_ID:-0}" \
    --device cuda \
    --threads "${SLURM_CPUS_PER_TASK:-1}"
