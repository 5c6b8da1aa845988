# medgen's pinned environment as a Docker/OCI image: the same steps as Apptainer.def (see
# there and README "A container on SLURM"). From the repository root:
#   docker build --build-arg MEDGEN_REVISION=$(git rev-parse HEAD) -t medgen:0.1.0 .
# GPU: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 (the same torch
# version, a CUDA build). Apptainer runs it after a push (MEDGEN_CONTAINER=docker://...) or
# converts it: apptainer build medgen.sif docker-daemon://medgen:0.1.0. Not built where it
# was written; tests/test_container.py checks it as it checks Apptainer.def.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG MEDGEN_REVISION=unknown

LABEL org.opencontainers.image.title="medgen" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${MEDGEN_REVISION}" \
      org.opencontainers.image.description="medgen workflow jobs: Python 3.11, constraints.txt pins" \
      medgen.torch-index="${TORCH_INDEX}"

# read-only under apptainer: numba (UMAP) and matplotlib keep their caches in /tmp
ENV NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONNOUSERSITE=1

COPY pyproject.toml setup.py MANIFEST.in README.md constraints.txt /opt/medgen/
COPY config/config.yaml /opt/medgen/config/config.yaml
COPY medgen /opt/medgen/medgen

# torch alone from the chosen wheel index, then everything else at its pinned version
RUN pip install --no-cache-dir --no-deps --index-url "$TORCH_INDEX" "$(grep -E '^torch==' /opt/medgen/constraints.txt)" \
 && pip install --no-cache-dir -c /opt/medgen/constraints.txt "/opt/medgen[tracking]" \
 && python -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
 && pip check \
 && medgen validate

ENTRYPOINT ["medgen"]
