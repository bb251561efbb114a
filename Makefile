# Two commands on a fresh machine: `make demo` and `make test`. Python 3.11+ and make are all they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[dev,mysql]' || { \
	  echo "note: mysqlclient could not be built (it needs libmariadb-dev and pkg-config);"; \
	  echo "      installing without it: the MariaDB tests will be skipped."; \
	  $(BIN)/python -m pip install --quiet -e '.[dev]'; }
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/loyalty demo

# The whole suite on SQLite, then the service, API and integration suites on PostgreSQL and MariaDB
# (skipped with a reason when the server does not answer, failed under LOYALTY_REQUIRE_SERVICES=1).
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
MARIADB_URL ?= mysql://root@127.0.0.1:3306/test

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q
	LOYALTY_DATABASE_URL=$(POSTGRES_URL) $(BIN)/python -m pytest -n 2 -q tests/service tests/api tests/integration
	LOYALTY_DATABASE_URL=$(MARIADB_URL) $(BIN)/python -m pytest -n 2 -q tests/service tests/api tests/integration

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

# gunicorn on :8000 over the demo's database (`loyalty serve --demo`: the file `loyalty demo`
# builds), running the demo first when that file is not there yet. --demo is also what lets it
# start without LOYALTY_SECRET_KEY; a plain `loyalty serve` refuses to.
serve: $(STAMP) var/demo.sqlite3
	$(BIN)/loyalty serve --demo

var/demo.sqlite3: | $(STAMP)
	$(BIN)/loyalty demo

clean:
	rm -rf $(VENV) var
