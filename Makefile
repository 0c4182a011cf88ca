# The README's commands. Each one sets up what is missing first.
.PHONY: setup demo test bench

NETNS := scripts/netns
VENV := .venv/bin

setup:
	@scripts/setup

demo: setup
	$(NETNS) $(VENV)/python -m appliance demo

test: setup
	$(NETNS) $(VENV)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(NETNS) $(VENV)/python -m bench
