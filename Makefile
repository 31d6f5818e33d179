# snnlab: two commands do everything (see README).
#   make figures   set up .venv, execute every notebook (quick profile), write results/index.html
#   make test      set up .venv, run the unit tests, the notebooks under papermill and nbval
#   make lab       set up .venv, open notebooks/ in JupyterLab
# GPU users: make test TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128  (same torch 2.13.0, CUDA build)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints.txt
TORCH_INDEX_URL ?=
PROFILE ?= quick
JOBS ?= 1
ONLY ?=
TEST_WORKERS ?= 2
STAMP := $(VENV)/.snnlab-installed

# notebooks whose summary cells nbval compares with their committed output
NBVAL_NOTEBOOKS := $(shell grep -l 'NBVAL_CHECK_OUTPUT' notebooks/*/*.ipynb 2>/dev/null)

.PHONY: setup figures test lab clean-notebooks benchmarks system-deps

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (snnlab)" >/dev/null
	touch $@

figures: $(STAMP)
	$(PY) -m snnlab.suite.cli figures --profile $(PROFILE) --jobs $(JOBS) $(if $(ONLY),--only '$(ONLY)')

test: $(STAMP) system-deps
	$(VENV)/bin/ruff check snnlab tests benchmarks
	$(VENV)/bin/lint-imports
	@# two workers (one per core); tests/conftest.py makes each paper's papermill runs and then its nbval
	@# runs one unit of work (one worker), so nbval reuses the cached trainings; both share one results root
	d=$$(mktemp -d); SNNLAB_RESULTS=$$d/results SNNLAB_KERNEL_DIR=$$d/kernels SNNLAB_REQUIRE_NATIVE=1 \
	  $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15 snnlab tests $(NBVAL_NOTEBOOKS) --nbval-lax

# System packages the tests need: a C compiler with OpenMP (native kernels) and Debian's chromium (browser
# tests). As root (CI) they are installed with apt-get when missing; otherwise a missing compiler stops here
# with the fix, and a missing chromium makes the browser tests skip with a message.
system-deps:
	@command -v $${CC:-gcc} >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && apt-get install -y -qq gcc >/dev/null); } || \
	  { echo "make test: no C compiler (gcc). Install gcc (with OpenMP) or set CC; the native kernel tests need it." >&2; exit 1; }
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "make test: no chromium; the browser tests will skip (apt-get install chromium to run them)" >&2

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

benchmarks: $(STAMP)
	$(PY) benchmarks/condensed_linear.py
	$(PY) benchmarks/sltt_memory_time.py
	$(PY) benchmarks/ssgd_speed_memory.py
	$(PY) benchmarks/lth_search_time.py

clean-notebooks: $(STAMP)
	$(PY) -m snnlab.suite.cli clean
