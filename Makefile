# One command for the tests: `make test` (creates .venv on first use, installs, runs pytest).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint clean

# torch goes in before the extras, so that they do not pull another build (README, Install: on Linux
# PyPI's default torch is the CUDA build). lpips goes in without its dependencies: projection's lpips-vgg16 loss
# reads only its weights file, and its torchvision requirement would replace torch. On a CPU-only machine whose index serves the CUDA build:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
TORCH_FROM := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" $(TORCH_FROM) || $(BIN)/python -m pip install -q "torch>=2.10" $(TORCH_FROM)
	$(BIN)/python -m pip install -q -e ".[torch,export,dev]"
	$(BIN)/python -m pip install -q --no-deps "lpips>=0.1.4"
	touch $(STAMP)

# The real Triton Inference Server for tests/test_triton_server.py, in its own environment (.venv-triton):
# the `tritonserver` binary and its python backend from NVIDIA's nvidia-pytriton wheel (--no-deps: only
# the server is used), with numpy < 2, which the wheel's python-backend stub needs, and onnxruntime, which
# the tests' python-backend model runs. The wheel is manylinux_2_35 x86_64; where pip cannot install it,
# this says so and those tests skip with the reason.
PYTRITON ?= nvidia-pytriton==0.7.0
TRITON_VENV ?= .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed

$(TRITON_STAMP):
	@test -x $(TRITON_VENV)/bin/python || $(PY) -m venv $(TRITON_VENV)
	@$(TRITON_VENV)/bin/python -m pip install -q --upgrade pip
	@$(TRITON_VENV)/bin/python -m pip install -q "numpy<2" "onnxruntime>=1.17" \
		&& $(TRITON_VENV)/bin/python -m pip install -q --no-deps "$(PYTRITON)" \
		|| echo "make: $(PYTRITON) could not be installed here: the Triton server tests will skip"
	@touch $(TRITON_STAMP)

# Debian's Chromium for tests/test_ui_browser.py (Playwright drives it; its own browser downloads are never used).
# Installed with apt-get where it is missing and this runs as root; otherwise that test skips and says why.
BROWSER_STAMP := $(VENV)/.chromium

$(BROWSER_STAMP): | $(STAMP)
	@command -v chromium >/dev/null \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
			&& { apt-get install -y -q chromium >/dev/null 2>&1 \
				|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
		|| echo "make: Chromium could not be installed here (apt-get install chromium, as root): the browser test will skip"
	@touch $(BROWSER_STAMP)

install: $(STAMP) $(TRITON_STAMP) $(BROWSER_STAMP)

# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
test: $(STAMP) $(TRITON_STAMP) $(BROWSER_STAMP)
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/python -m ruff check stylegan_sdk serving training protos benchmarks export tests

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(TRITON_VENV) .pytest_cache out

# The main job, on a fresh clone: a torch-free environment (.venv-demo) with the package installed,
# then serve the bundled emoji model and write pictures through the gRPC client into ./out/.
DEMO_VENV ?= .venv-demo

.PHONY: demo
demo:
	@test -x $(DEMO_VENV)/bin/python || $(PY) -m venv $(DEMO_VENV)
	@$(DEMO_VENV)/bin/python -m pip install -q --upgrade pip
	@$(DEMO_VENV)/bin/python -m pip install -q .
	@cd /tmp && $(abspath $(DEMO_VENV))/bin/python -m stylegan_sdk.demo --out $(abspath out)
