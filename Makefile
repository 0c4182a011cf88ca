# The README's commands. Each one sets up what is missing first.
.PHONY: setup demo test test-systemd test-arm64 bench soak

NETNS := scripts/netns
VENV := .venv/bin

setup:
	@scripts/setup

demo: setup
	$(NETNS) $(VENV)/python -m appliance demo

test: setup
	$(NETNS) $(VENV)/python -m pytest $(PYTEST_ARGS)

# The unit exactly as shipped, under a real systemd in a Debian 12 container.
test-systemd: setup
	scripts/test-systemd

# The suite (but the browser tests and the simulated room) on arm64 under emulation, against arm64 Janus.
test-arm64: setup
	scripts/test-arm64

bench: setup
	$(NETNS) $(VENV)/python -m bench

# MINUTES=30 make soak: a long soak with its memory and descriptor figures.
MINUTES ?= 10
soak: setup
	$(NETNS) $(VENV)/python -m pytest -s tests/test_soak.py --soak-minutes $(MINUTES)
