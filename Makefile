# nlpseq developer commands. `make install` then `make test` is all a new
# machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-all lint bench clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test,lint,onnx]'

test:
	$(BIN)/python -m pytest -m "not slow" -q -n 2 --dist loadfile --durations=15

test-all:
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint:
	$(BIN)/ruff check nlpseq apps tests bench

bench:
	$(BIN)/python bench/cells.py
	$(BIN)/python bench/implementation.py
	$(BIN)/python bench/sentiment.py
	$(BIN)/python bench/next_word.py
	$(BIN)/python bench/ner.py
	$(BIN)/python bench/translation.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/distribute.py
	$(BIN)/python bench/transfer.py
	$(BIN)/python bench/cascade.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
