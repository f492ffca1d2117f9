# Shortcuts for the README's commands.
PY ?= python

.PHONY: install quickstart test
install:
	$(PY) -m pip install -e ".[cpu,test]"

quickstart: install
	$(PY) tools/train.py -c configs/quickstart.yaml

test:
	$(PY) -m pytest -q
