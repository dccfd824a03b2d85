#!/usr/bin/env bash
# Install the servers and tools the test suite runs locally (idempotent).
#
# - docker-registry (Debian's build of distribution/distribution 2.8): the OCI registry that
#   tests/ops/test_images.py starts on 127.0.0.1 to exercise `python -m ops images verify`.
# - postgresql (Debian's, 15): tests/servers/postgres.py runs two throw-away clusters on 127.0.0.1
#   (initdb + pg_ctl) for the import and backup tests; the scripts take the client tools' paths.
# - borgbackup (borg 1.2) and jq: the real borg under borgmatic (pinned in requirements-dev.txt) in
#   tests/host/test_borgmatic.py, and the JSON reader of the borgmatic metrics and archive check.
#
# Does nothing when everything is present. Installing needs root (apt-get); without root it says
# what to run instead and exits non-zero in CI, zero elsewhere (the tests that need it skip).
set -euo pipefail

# package:the file that shows it is installed
wanted=(
    "docker-registry:/usr/bin/docker-registry"
    "postgresql:/usr/lib/postgresql/*/bin/initdb"
    "borgbackup:/usr/bin/borg"
    "jq:/usr/bin/jq"
    "openssh-server:/usr/sbin/sshd"
)

missing=()
for entry in "${wanted[@]}"; do
    package=${entry%%:*}
    probe=${entry#*:}
    # shellcheck disable=SC2086  # the probe may be a glob (postgresql's versioned directory)
    if ! compgen -G $probe >/dev/null; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-test-servers: docker-registry, postgresql, borgbackup and jq already present, nothing to do"
    exit 0
fi

# Outside CI (an operator's Mac, a machine without root) the tests that need them skip with this reason;
# in CI (CI=true) they must run, so a missing package is an error here already.
cannot_install() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "install-test-servers: $1" >&2
        exit 1
    fi
    echo "install-test-servers: $1; the tests that need it will be skipped" >&2
    exit 0
}

if ! command -v apt-get >/dev/null 2>&1; then
    cannot_install "${missing[*]} missing and apt-get is not available (install Debian's packages by other means)"
fi

if [[ "$(id -u)" -ne 0 ]]; then
    cannot_install "${missing[*]} missing and this is not root (run: sudo apt-get update && sudo apt-get install -y ${missing[*]})"
fi

echo "install-test-servers: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
    echo "install-test-servers: apt-get update failed; cannot install ${missing[*]}" >&2
    exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "install-test-servers: apt-get install ${missing[*]} failed" >&2
    exit 1
fi
# The packages start system services on Debian when systemd runs (docker-registry, postgresql's main
# cluster); the tests start their own instances on random loopback ports and need nothing from them.
for entry in "${wanted[@]}"; do
    probe=${entry#*:}
    # shellcheck disable=SC2086
    compgen -G $probe >/dev/null || { echo "install-test-servers: ${entry%%:*} installed but $probe is missing" >&2; exit 1; }
done
echo "install-test-servers: installed ${missing[*]}"
