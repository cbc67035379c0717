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
# First, once, in the directory you submit from (data.root `data` is relative to it):
#   VAE_SEARCH_STORAGE=$(cat ~/.config/vae-search/storage) vae-search create-study SPEC
# creates the study and downloads its dataset, so that the tasks do not race to download it.
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

# An empty URL would make vae-search fall back to SQLite, which must never be on a shared FS.
NO_URL="no database URL: put it (without password) in $STORAGE_FILE or set VAE_SEARCH_STORAGE"
if [[ -z "${VAE_SEARCH_STORAGE:-}" ]]; then
    # its own assignment: inside ${VAR:-$(cat ...)} a failing cat does not trip set -e
    VAE_SEARCH_STORAGE=$(cat "$STORAGE_FILE") || { echo "$NO_URL" >&2; exit 1; }
fi
if [[ -z "$VAE_SEARCH_STORAGE" ]]; then
    echo "$NO_URL" >&2
    exit 1
fi
export VAE_SEARCH_STORAGE
export VAE_SEARCH_ARTIFACTS="${VAE_SEARCH_ARTIFACTS:-$HOME/vae-search/artifacts}"
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"

# exec: the worker is the batch shell, so the --signal above reaches it directly.
exec "$VENV/bin/vae-search" worker "$SPEC" \
    --index "${SLURM_ARRAY_TASK_ID:-0}" \
    --device cuda \
    --threads "${SLURM_CPUS_PER_TASK:-1}"
