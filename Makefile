# A newcomer's two commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test migrate clean demo

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) -m db.migrate up

run: migrate
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start web worker

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# A narrated session: web + worker on fresh embedded databases, fake Slack, signed requests.
demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/demo.py

clean:
	rm -rf $(VENV) instance .pytest_cache
