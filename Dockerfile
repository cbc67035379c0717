# syntax=docker/dockerfile:1
# vae-search: one image for the workers, the dashboard, the study creation and the storage proxy.
#
#   docker build -t vae-search .                     # torch from PyPI: a CUDA build (GPU or CPU)
#   docker build -t vae-search --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .
#                                                    # a much smaller CPU-only image
#
# The entry point is the CLI: `docker run vae-search worker studies/quickstart.yaml`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Optional extras of vae-search to install (grpc: the storage proxy and grpc:// workers).
ARG EXTRAS=grpc
# Optional index for torch/torchvision (e.g. PyTorch's CPU-only wheels); empty: PyPI.
ARG TORCH_INDEX_URL=

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer survives code changes.
COPY pyproject.toml ./
RUN python - <<'EOF' > /tmp/requirements.txt
import os, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(project["dependencies"])
for extra in filter(None, os.environ.get("EXTRAS", "").split(",")):
    reqs += project.get("optional-dependencies", {}).get(extra, [])
print("\n".join(reqs))
EOF
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install torch torchvision --index-url "$TORCH_INDEX_URL"; \
    fi \
 && pip install -r /tmp/requirements.txt

# The package itself (no dependency resolution: they are all above).
COPY README.md ./
COPY vae_search ./vae_search
RUN pip install --no-deps . && vae-search --version

# Shipped study specs; compose mounts ./studies over them so that edits need no rebuild.
COPY studies ./studies

# Not root. /artifacts and /app/data (the datasets: data.root defaults to `data`, relative to
# WORKDIR) belong to the user, and a fresh named volume mounted there inherits it.
RUN useradd --create-home --uid 1000 vae \
 && mkdir -p /artifacts /app/data && chown vae:vae /artifacts /app/data
USER vae
ENV VAE_SEARCH_ARTIFACTS=/artifacts

ENTRYPOINT ["vae-search"]
CMD ["--help"]
