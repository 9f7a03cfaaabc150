#!/bin/sh
# Triton refuses to start on a model repository that does not exist; on a fresh volume the
# frontend has not written it yet. Then hand over to NVIDIA's own entrypoint (driver checks,
# CUDA forward-compatibility libraries).
set -eu
mkdir -p "${HOMELAB_TRITON_REPOSITORY:-/data/triton/repository}"
if [ -x /opt/nvidia/nvidia_entrypoint.sh ]; then
    exec /opt/nvidia/nvidia_entrypoint.sh "$@"
fi
exec "$@"
