# Conveniences; the README's commands need none of this.
PYTHON ?= .venv/bin/python

.PHONY: stack stack-fast stack-fleet generate check-generated

# The whole stack natively (Debian's redis-server, prometheus, prometheus-alertmanager).
stack:
	$(PYTHON) scripts/stack.py

# The same with short rate windows and waits, to see alerts within a minute or two.
stack-fast:
	$(PYTHON) scripts/stack.py --fast

# Two "clusters" of demo services, each with its own Prometheus remote-writing to a global
# one that evaluates the rules generated with cluster among the group labels (fast windows).
stack-fleet:
	$(PYTHON) scripts/stack.py --fleet --fast

generate:
	$(PYTHON) -m cachewatch.cli generate

check-generated:
	$(PYTHON) -m cachewatch.cli generate --check
