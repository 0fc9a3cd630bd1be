# One entry point for readers and CI. Every target sets up the local venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PROFILE ?= quick

.PHONY: setup test book train bench

$(VENV)/.installed: requirements.txt requirements-citation.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	# cffconvert needs jsonschema<4, jupyter-book >=4: it gets a venv of its own
	$(PYTHON) -m venv $(VENV)/citation
	$(VENV)/citation/bin/pip install --quiet -r requirements-citation.txt
	touch $@

setup: $(VENV)/.installed

test: setup
	@if [ -f .ci/book_setup.sh ]; then bash .ci/book_setup.sh; fi
	$(PY) -m pytest

train: setup
	$(PY) -m fwbook train --output runs/fast_weights_R20.json

bench: setup
	$(PY) -m fwbook bench

book: setup
	@if [ -f .ci/book_setup.sh ]; then bash .ci/book_setup.sh; fi
	$(PY) -m fwbook book --profile $(PROFILE)
