# Every target builds .venv from scratch when it is missing, so a fresh clone needs only `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench install clean mutation

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first, where pip can find it: a bare `torch` requirement pulls a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0" 2>/dev/null || echo "torch==2.13.0 CPU wheel not found; pip will resolve torch>=2.2"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests

demo: $(STAMP)
	$(VENV)/bin/lottery-ticket demo

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py

# Mutation testing of the core (not part of CI: over an hour on 2 cores). Score and survivors: docs/testing.md.
mutation: $(STAMP)
	$(PY) -m pip install -q -e ".[mutation]"
	rm -rf mutants
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children 2 || true
	$(VENV)/bin/mutmut results --all true > mutation-results.txt || $(VENV)/bin/mutmut results > mutation-results.txt
	$(PY) scripts/mutation_score.py mutation-results.txt

clean:
	rm -rf $(VENV) build src/*.egg-info mutants mutation-results.txt
