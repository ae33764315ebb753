PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lab simulate clean bench browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/payamak demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# Debian's chromium (the HTML report and JupyterLab tests) and PHP's SoapClient (a client of another
# language against the simulator); their tests skip, saying why, where apt-get cannot install them.
browser:
	@(command -v chromium && command -v php) >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium php-cli php-soap >/dev/null) || \
		echo "chromium or php could not be installed: their tests will skip"

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
	rm -rf $(VENV) .pytest_cache
