# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install lmodp with every extra, run the accounting/search demo
#   make test   create .venv, install, lint (ruff), type-check (mypy), run the test-suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINTED := lmodp_core lmodp_torch tests benchmarks

.PHONY: install test demo finetune-demo bench bench-torch clean

# torch is pinned in the same pip command as everything else so that no package pulls a CUDA build.
$(STAMP): pyproject.toml
	@echo "Installing lmodp with every extra (CPU torch, transformers, opacus, matplotlib, ...) into $(VENV);" \
		"this takes a few minutes and prints nothing until it is done."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0" -e ".[dev,plot,torch,demo,bench,interop]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/lmodp account --noise gaussian:0.8 --sample-rate 5e-3 --steps 1000 --delta 1e-6
	$(VENV)/bin/lmodp optimize --epsilon 1 --delta 1e-5 --steps 1000 --sample-rate 0.01
	$(VENV)/bin/lmodp optimize --epsilon 1 --delta 1e-5 --steps 1 --geometry scalar
	$(VENV)/bin/lmodp audit --published

# A short private fine-tuning of MiniLM on SST-2 (needs ../shared/data/sst2; about a minute on 2 cores).
finetune-demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/lmodp finetune --noise gaussian --epsilon 8 --lora --max-steps 20 --eval-examples 200

bench: $(STAMP)
	$(PY) benchmarks/step_rdp_speed.py
	$(PY) benchmarks/accounting_speed.py
	$(PY) benchmarks/search_speed.py

bench-torch: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/finetune_sst2.py --max-steps 3 --eval-examples 200 --repeats 3

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .lmodp_cache
