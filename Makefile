# Packages are installed editable with the project folder on sys.path (compat mode), so a folder named like one of
# them (a store called `store/`) in the working directory cannot shadow it.
# Two entry points for a fresh machine (see README): `make demo` and `make test`.

VENV   := .venv
PY     := $(VENV)/bin/python
# A CPU build of torch lies in /opt/wheels on our machines; elsewhere pip takes torch from its index.
WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
QUERY  ?= how does the on-call hand-off work?

.PHONY: setup demo test test-fast lint bench tools

$(VENV)/.installed: pyproject.toml shims/en_core_web_sm/pyproject.toml shims/webrtcvad/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(WHEELS) --config-settings editable_mode=compat -e '.[test]' ./shims/en_core_web_sm \
	  ./shims/webrtcvad
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/corpus ingest
	$(VENV)/bin/corpus search "$(QUERY)" --limit 3

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# The edit loop: no subprocess servers, no Whisper, no BEIR or long evaluations (tests marked slow), on every core.
test-fast: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not slow" -n auto --dist loadfile

# Optional system tools, used when installed: Tesseract reads scanned PDFs, LibreOffice legacy .doc/.ppt,
# Chromium is the browser tests/test_web.py drives. Debian/Ubuntu as root; skipped when all are there already.
# With node installed, the OAuth tests' OpenID Connect provider (npm oidc-provider, pinned by its package-lock.json).
TOOLS := tesseract-ocr tesseract-ocr-eng libreoffice-writer-nogui libreoffice-impress-nogui chromium nodejs
tools:
	@command -v tesseract >/dev/null && command -v soffice >/dev/null && command -v chromium >/dev/null && \
	  command -v npm >/dev/null || \
	  { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TOOLS) >/dev/null; }
	@test -d tests/oidc_idp/node_modules || ! command -v npm >/dev/null || \
	  npm ci --prefix tests/oidc_idp --no-audit --no-fund

bench: setup
	$(PY) bench/ingest_throughput.py
	$(PY) bench/transcription.py
	$(PY) bench/diarization.py
	$(PY) bench/questions_eval.py
	$(PY) bench/qmsum_eval.py
