#!/bin/sh
# Hand over to NVIDIA's own entrypoint (driver checks, CUDA forward-compatibility libraries),
# which runs the command: `python3 -m frontend.triton.serve --exec` (Dockerfile.triton's CMD)
# creates the model repository on a fresh volume and execs tritonserver.
set -eu
if [ -x /opt/nvidia/nvidia_entrypoint.sh ]; then
    exec /opt/nvidia/nvidia_entrypoint.sh "$@"
fi
exec "$@"
