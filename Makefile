# Conveniences; the README's commands need none of this.
PYTHON ?= .venv/bin/python

.PHONY: stack stack-fast generate check-generated

# The whole stack natively (Debian's redis-server, prometheus, prometheus-alertmanager).
stack:
	$(PYTHON) scripts/stack.py

# The same with short rate windows and waits, to see alerts within a minute or two.
stack-fast:
	$(PYTHON) scripts/stack.py --fast

generate:
	$(PYTHON) -m cachewatch.cli generate

check-generated:
	$(PYTHON) -m cachewatch.cli generate --check
