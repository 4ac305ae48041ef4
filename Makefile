# PrintFabric: `make run` starts the whole fabric on this machine, `make test` runs the suite.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BUF := $(VENV)/npm/node_modules/.bin/buf
PEERS_STAMP := $(VENV)/.installed-peers
# Debian packages of the third-party peers the tests talk to (installed when run as root).
PEER_PACKAGES := postgresql redis-server cups cups-ipp-utils cups-daemon cups-client cups-bsd cups-core-drivers cups-filters ghostscript avahi-daemon dbus-daemon rlpr socat slapd ldap-utils samba-ad-dc samba-ad-provision

.PHONY: run test proto lint bench fuzz clean peers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/printfabric-cloud fabric

peers: $(PEERS_STAMP)

# /etc/ldap/noslapd keeps the slapd package from starting a system slapd (now or at boot): the
# tests run their own, and the Samba AD DC tests need ports 389 and 636.
$(PEERS_STAMP): Makefile
	@mkdir -p $(VENV)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(PEER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  case " $$missing " in *" slapd "*) mkdir -p /etc/ldap && touch /etc/ldap/noslapd;; esac; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi; \
	else echo "not root: install the Debian packages $(PEER_PACKAGES) yourself"; fi
	touch $@

test: $(STAMP) peers $(BUF)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

proto: $(STAMP)
	$(BIN)/python tests/tools/protogen.py

$(BUF):
	npm install --silent --no-save --prefix $(VENV)/npm @bufbuild/buf@^1

lint: $(STAMP) $(BUF)
	$(BUF) lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.bench

# Coverage-guided fuzzing of the IPP codec with atheris (FUZZ_SECONDS each run).
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[fuzz]'
	$(BIN)/python tests/fuzz/fuzz_ipp.py -max_total_time=$(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache var
