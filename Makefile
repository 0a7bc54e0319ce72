# `make demo` and `make test` create .venv when missing, install what they need, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/mini

export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch/torchvision pinned to the pair that loads with compressai's torchvision import.
	$(PY) -m pip install -q -e ".[build,test,dev]"
	# compressai's metadata pins numpy<2, which would downgrade numpy under pyarrow: install it without
	# dependencies; its runtime dependencies come with the [build] extra.
	$(PY) -m pip install -q --no-deps "compressai==1.2.8"
	$(PY) -c "import compressai, torchvision, pyarrow, datasets, numpy; print('numpy', numpy.__version__, 'compressai', compressai.__version__)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cfqa demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) out
