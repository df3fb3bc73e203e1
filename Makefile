# minidock: two commands on a fresh Debian machine, as root: `make demo`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
MD := $(VENV)/bin/minidock
APT_PKGS := iptables nftables iproute2 busybox-static libcap-dev libseccomp2 gcc conntrack curl kmod util-linux procps tini etcd-server etcd-client graphviz
BUILD := build
BUSYBOX_TAR := $(BUILD)/busybox.tar
DB_TAR := $(BUILD)/training-postgres.tar
PYTEST_ARGS ?=
# the bench's peers and tools (Docker 20.10, Podman, dnsperf); not needed to run minidock
BENCH_PKGS := docker.io podman dnsperf hyperfine
BENCH_ARGS ?=

.PHONY: setup apt bench-apt image demo test test-unit test-integration test-long lint-imports bench clean

# The bytecode of minidock is compiled here, not at its first import: a shell that sets
# PYTHONDONTWRITEBYTECODE would otherwise recompile every module on every command.
setup: apt $(VENV)/.stamp
	@$(VENV)/bin/python -m compileall -q minidock >/dev/null

# Installs the Debian packages minidock needs, only those missing.
apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

$(VENV)/.stamp: pyproject.toml minidock/launcher.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]' --config-settings editable_mode=compat
	$(VENV)/bin/python -m minidock.launcher $(MD)
	touch $@

# The bench's peers and tools, only those missing.
bench-apt:
	@missing=""; for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

# busybox:latest as a docker-save archive, built from the host's busybox-static.
image: setup $(BUSYBOX_TAR) $(DB_TAR)
$(BUSYBOX_TAR): images/busybox/* | $(VENV)/.stamp
	@mkdir -p $(BUILD)
	$(MD) --root $(BUILD)/root --exec-root $(BUILD)/run image build images/busybox -t busybox:latest --output $@
# The article's db image (ENV doc=docker, EXPOSE 5432, a tiny TCP service).
$(DB_TAR): images/training-postgres/* | $(VENV)/.stamp
	@mkdir -p $(BUILD)
	$(MD) --root $(BUILD)/root --exec-root $(BUILD)/run image build images/training-postgres -t training/postgres:latest --output $@

demo: setup image
	@bash demo/demo.sh

test: setup image lint-imports
	$(VENV)/bin/python -m pytest -q -m "not long" -n 2 $(PYTEST_ARGS) tests

test-unit: setup lint-imports
	$(VENV)/bin/python -m pytest -q tests/unit $(PYTEST_ARGS)

# The import contracts of pyproject.toml: dependencies run one way.
lint-imports: setup
	$(VENV)/bin/lint-imports

test-integration: setup image
	$(VENV)/bin/python -m pytest -q -n 2 tests/integration $(PYTEST_ARGS)

test-long: setup image
	$(VENV)/bin/python -m pytest -q -m long $(PYTEST_ARGS) tests

bench: setup image bench-apt
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(VENV) *.egg-info
