PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-latest lock install lab simulate clean bench system-packages

# constraints.txt locks every package to the version the tests passed with (make lock rewrites it).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,dlt]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/payamak demo

test: $(STAMP) system-packages
	$(BIN)/python -m pytest -q

# Debian's chromium (the HTML report and JupyterLab tests), PHP's SoapClient (a client of another
# language against the simulator) and PostgreSQL (the dlt source into a real server); their tests
# skip, saying why, where apt-get cannot install them.
system-packages:
	@(command -v chromium && command -v php && ls /usr/lib/postgresql/*/bin/initdb) >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium php-cli php-soap postgresql >/dev/null) || \
		echo "chromium, php or postgresql could not be installed: their tests will skip"

# The newest release of every dependency, in a venv of its own: finds a breaking release before a user does.
test-latest: system-packages
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --upgrade pip
	.venv-latest/bin/pip install --quiet --upgrade -e '.[test,dlt]'
	.venv-latest/bin/python -m pytest -q

# Rewrite constraints.txt from the venv the tests just passed in.
lock: $(STAMP)
	$(BIN)/pip freeze --all --exclude-editable | grep -v '^payamak' > constraints.txt

lab: $(STAMP)
	cd notebooks && ../$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --allow-root \
		01_quickstart.ipynb 02_delivery_report.ipynb 03_campaign_postmortem.ipynb

simulate: $(STAMP)
	$(BIN)/payamak simulate --admin

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_simulator.py
	$(BIN)/python benchmarks/bench_client.py
	$(BIN)/python benchmarks/bench_sync.py --million

clean:
	rm -rf $(VENV) .venv-latest .pytest_cache
