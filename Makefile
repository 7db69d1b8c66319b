# load_balance with P4Runtime: build, run, test.
#
#   make run    set up (first time), build, start Mininet with s1-s3 and the CLI
#   make test   the whole test suite (needs root: namespaces, veths, Mininet)
#   make demo   before/after the controller, without typing anything
#   make demo-live  lbctl changes weights, drains and restores h3 under traffic
#   make stop   remove exactly what `make run` started
#   make clean  stop, then remove logs/ and pcaps/
#   make bench  benchmarks (controller, pipeline push, switch forwarding, memory)
#   make soak   forwarding under control-plane load, a line per minute (root;
#               SOAK_SECONDS=600 by default)
#
# Variables: BMV2_SWITCH_EXE=simple_switch_grpc|p4switch|PATH picks the switch
# (default: simple_switch_grpc when on PATH, else our p4switch); NETRUN_ARGS adds
# runner options, e.g. NETRUN_ARGS="--grpc-host 0.0.0.0" or "--quiet-switches".

PYTHON_SYS ?= /usr/bin/python3
VENV       := .venv
PY         := $(VENV)/bin/python
APT_PKGS   := mininet python3-venv iproute2 ethtool net-tools procps netsniff-ng
# Mininet needs root: use sudo when not root and sudo exists (else netrun says so).
SUDO       := $(shell [ "$$(id -u)" -eq 0 ] || { command -v sudo >/dev/null && echo sudo; })
NETRUN     := $(SUDO) env PATH="$$PATH" $(PY) -m netrun
NETRUN_ARGS ?=
ifdef BMV2_SWITCH_EXE
NETRUN_ARGS += --switch-exe $(BMV2_SWITCH_EXE)
endif

.PHONY: all
all: build

.PHONY: setup
setup: $(VENV)/.ready

$(VENV)/.ready: requirements.txt pyproject.toml
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(PYTHON_SYS) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .  # this project (utils/ packages, the p4switch command) + requirements.txt
	touch $@

# p4c's output is committed in build/ with the source's sha256: recompile where
# p4c-bm2-ss is installed, otherwise check that build/ still matches the source.
.PHONY: build
build: setup
	@$(PY) utils/p4build.py load_balance.p4 --out-dir build

.PHONY: run
run: build
	$(NETRUN) run -t topology.json -j build/load_balance.json $(NETRUN_ARGS)

# Needs only Python's standard library: works even if the venv is gone.
.PHONY: stop
stop:
	@$(SUDO) env PYTHONPATH=utils $(PYTHON_SYS) -m netrun stop

.PHONY: demo
demo: build
	$(NETRUN) demo -t topology.json -j build/load_balance.json $(NETRUN_ARGS)

# lbctl steering s1 live: 1:1 -> 3:1 -> drain h3 -> restore h3 under steady traffic.
.PHONY: demo-live
demo-live: build
	$(NETRUN) demo-live -t topology.json -j build/load_balance.json --quiet-switches $(NETRUN_ARGS)

.PHONY: clean
clean: stop
	rm -rf logs pcaps

# The test suite: engine, controller library, P4Runtime server, switch on veths,
# Mininet end to end.  Needs root (namespaces, veths).
.PHONY: test
test: build
	$(PY) -m ruff check utils tests bench mycontroller.py lbctl.py send.py receive.py
	$(PY) -m pytest -q

.PHONY: bench
bench: build
	$(PY) bench/run.py

# s1 forwards real-shaped traffic while batches, reads, a second controller and
# mycontroller-style re-programmings run; fails on any loss or RSS growth > 5 MiB.
SOAK_SECONDS ?= 600
.PHONY: soak
soak: build
	$(SUDO) $(PY) bench/soak.py --seconds $(SOAK_SECONDS)
