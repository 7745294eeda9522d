# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install lmodp with every extra, run the accounting/search demo
#   make test   create .venv, install, run the test-suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench clean

# torch is pinned in the same pip command as everything else so that no package pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0" -e ".[dev,plot,torch,demo,bench]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/lmodp account --noise gaussian --scale 1.0 --sample-rate 0.01 --steps 10000 --delta 1e-5
	$(VENV)/bin/lmodp optimize 1.0 1e-5 1000 0.01
	$(VENV)/bin/lmodp optimize 1.0 1e-5 1 1 --geometry scalar
	$(VENV)/bin/lmodp audit --published

bench: $(STAMP)
	$(PY) benchmarks/step_rdp_speed.py
	$(PY) benchmarks/accounting_speed.py
	$(PY) benchmarks/search_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .lmodp_cache
