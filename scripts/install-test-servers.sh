#!/usr/bin/env bash
# Install the servers the test suite runs locally (idempotent).
#
# - docker-registry (Debian's build of distribution/distribution 2.8): the OCI registry that
#   tests/ops/test_images.py starts on 127.0.0.1 to exercise `python -m ops images verify`.
#
# Does nothing when everything is present. Installing needs root (apt-get); without root it says
# what to run instead and exits non-zero.
set -euo pipefail

# ---- openssh-server: the real sshd tests/servers/sshd.py starts on 127.0.0.1 (as the test user, its own
# throw-away host key and config) for the host-side probes of `python -m ops check`. Debian's package only;
# without apt-get or root the ops check tests that need it skip (in CI they fail).
if [[ ! -x /usr/sbin/sshd ]]; then
    sshd_missing="/usr/sbin/sshd is missing (Debian's openssh-server)"
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" -eq 0 ]]; then
        echo "install-test-servers: installing openssh-server with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends openssh-server >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server >/dev/null; } \
            || sshd_missing="apt-get could not install openssh-server"
    fi
    if [[ ! -x /usr/sbin/sshd ]]; then
        if [[ "${CI:-}" == "true" ]]; then
            echo "install-test-servers: $sshd_missing" >&2
            exit 1
        fi
        echo "install-test-servers: $sshd_missing; the ops check host-probe tests will be skipped" >&2
    fi
fi

registry_bin=/usr/bin/docker-registry

if [[ -x "$registry_bin" ]]; then
    echo "install-test-servers: $registry_bin already present, nothing to do"
    exit 0
fi

# Outside CI (an operator's Mac, a machine without root) the registry tests skip with this reason;
# in CI (CI=true) they must run, so a missing registry is an error here already.
cannot_install() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "install-test-servers: $1" >&2
        exit 1
    fi
    echo "install-test-servers: $1; the tests that need it will be skipped" >&2
    exit 0
}

if ! command -v apt-get >/dev/null 2>&1; then
    cannot_install "$registry_bin is missing and apt-get is not available (install Debian's docker-registry, distribution 2.8, by other means)"
fi

if [[ "$(id -u)" -ne 0 ]]; then
    cannot_install "$registry_bin is missing and this is not root (run: sudo apt-get update && sudo apt-get install -y docker-registry)"
fi

echo "install-test-servers: installing docker-registry with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
    echo "install-test-servers: apt-get update failed; cannot install docker-registry" >&2
    exit 1
fi
if ! apt-get install -y -qq --no-install-recommends docker-registry >/dev/null; then
    echo "install-test-servers: apt-get install docker-registry failed" >&2
    exit 1
fi
# The package starts a system service on Debian when systemd runs; the tests start their own
# instances on random loopback ports and need nothing from it.
if [[ ! -x "$registry_bin" ]]; then
    echo "install-test-servers: docker-registry installed but $registry_bin is missing" >&2
    exit 1
fi
echo "install-test-servers: installed $("$registry_bin" --version 2>/dev/null || echo docker-registry)"
