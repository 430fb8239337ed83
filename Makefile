# One command for the tests: `make test` (creates .venv on first use, installs, runs pytest).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0" || $(BIN)/python -m pip install -q "torch>=2.10"
	$(BIN)/python -m pip install -q -e ".[torch,export,dev]"
	touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
test: $(STAMP)
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/python -m ruff check stylegan_sdk serving protos benchmarks export tests

clean:
	rm -rf $(VENV) .pytest_cache
