# The README's commands. Each one sets up what is missing first.
.PHONY: setup demo test test-systemd bench soak

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

bench: setup
	$(NETNS) $(VENV)/python -m bench

# MINUTES=30 make soak: a long soak with its memory and descriptor figures.
MINUTES ?= 10
soak: setup
	$(NETNS) $(VENV)/python -m pytest -s tests/test_soak.py --soak-minutes $(MINUTES)
