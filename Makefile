# load_balance with P4Runtime: build, run, test.
PYTHON_SYS ?= /usr/bin/python3
VENV       := .venv
PY         := $(VENV)/bin/python
APT_PKGS   := mininet python3-venv iproute2 ethtool

.PHONY: setup
setup: $(VENV)/.ready

$(VENV)/.ready: requirements.txt
	@command -v mn >/dev/null 2>&1 && $(PYTHON_SYS) -c 'import ensurepip' 2>/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS))
	$(PYTHON_SYS) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# p4c's output is committed in build/ with the source's sha256: recompile where
# p4c-bm2-ss is installed, otherwise check that build/ still matches the source.
.PHONY: build
build: setup
	@$(PY) utils/p4build.py load_balance.p4 --out-dir build

# The test suite: engine, controller library, P4Runtime server, switch on veths,
# Mininet end to end.  Needs root (namespaces, veths).
.PHONY: test
test: setup build
	$(PY) -m ruff check utils tests mycontroller.py send.py receive.py
	$(PY) -m pytest -q
