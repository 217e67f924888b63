# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEV := VRM_DEBUG=True
# The issuer (OAuth metadata, `iss`, receipts, links in e-mails) follows PORT in development,
# unless VRM_ISSUER is set.
ISSUER := $(or $(VRM_ISSUER),http://127.0.0.1:$(PORT))
RUN := $(DEV) VRM_ISSUER=$(ISSUER)
# seed_demo writes the fresh logins here; serve_demo prints them once the server listens.
LOGINS := var/demo-logins.json
# The production packages, top layer first (docs/architecture.md).
PACKAGES := vrm devtools portal auditor vendors consent personal_data audit accounts core

.PHONY: run test lint seal worker clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt examples/requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

# axe-core for the browser tests' accessibility checks, at the version package-lock.json pins.
# `npm ci` empties node_modules first, so the stamp is written after it.
node_modules/.npm-ci: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.run-deps
	@$(DEV) $(PY) manage.py dev_keys --quiet
	@echo "Migrating var/vrm.sqlite3 and loading the demo data..."
	@$(RUN) $(PY) manage.py migrate --noinput --verbosity 0
	@$(RUN) $(PY) manage.py seed_demo --save $(LOGINS)
	@$(RUN) $(PY) manage.py serve_demo --logins $(LOGINS) 127.0.0.1:$(PORT)

test: $(VENV)/.dev-deps node_modules/.npm-ci
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(DEV) $(PY) manage.py dev_keys --quiet
	$(DEV) $(VENV)/bin/mypy $(PACKAGES)
	$(DEV) $(PY) manage.py check
	$(DEV) $(PY) manage.py makemigrations --check --dry-run
	# worksteal: an idle worker takes queued tests from a busy one, so the slow browser and
	# server tests do not pile up at the end of one worker (7 min 51 s against 9 min 8 s here).
	$(PY) -m pytest -n auto --maxprocesses 4 --dist worksteal

clean:
	rm -rf $(VENV) var test-artifacts node_modules
