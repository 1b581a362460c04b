# shellcheck shell=bash
# Sourced by deploy/dev/demo and deploy/dev/test: makes .venv with the project installed.
# Idempotent; reinstalls only when pyproject.toml changed.

ensure_venv() {
    local extras="$1" stamp py="${PYTHON:-python3}"
    if ! command -v "$py" >/dev/null 2>&1; then
        echo "error: $py not found (Python 3.11 or newer is needed)" >&2
        return 1
    fi
    if [ ! -x .venv/bin/python ]; then
        if ! "$py" -m venv .venv 2>/dev/null; then
            rm -rf .venv
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                echo "installing python3-venv (Debian)" >&2
                apt-get update -qq >&2
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
                "$py" -m venv .venv
            else
                echo "error: '$py -m venv' failed; install your distribution's venv package" >&2
                return 1
            fi
        fi
    fi
    stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras}"
    if [ ! -f "$stamp" ]; then
        echo "installing the project and its dependencies into .venv ($extras)" >&2
        .venv/bin/python -m pip install -q --upgrade pip >&2
        .venv/bin/python -m pip install -q -e ".[${extras}]" >&2
        rm -f .venv/.installed-*
        touch "$stamp"
    fi
}

# AWS ParallelCluster's own package, in a virtual environment of its own (its pins clash
# with ours): the tests validate the cluster configurations we render against its schema.
PCLUSTER_VERSION="3.16.1"
ensure_pcluster_venv() {
    local py="${PYTHON:-python3}" stamp=".venv-pcluster/.installed-${PCLUSTER_VERSION}"
    [ -f "$stamp" ] && return 0
    echo "installing aws-parallelcluster ${PCLUSTER_VERSION} into .venv-pcluster" >&2
    rm -rf .venv-pcluster
    "$py" -m venv .venv-pcluster &&
        .venv-pcluster/bin/python -m pip install -q "aws-parallelcluster==${PCLUSTER_VERSION}" >&2 &&
        touch "$stamp"
}
