# Two commands do all set-up on a fresh machine:
#   make demo   installs everything and animates the shipped presenter script (examples/talk.txt)
#   make test   installs what the tests need and runs them
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Extra pip arguments for torch, e.g. an index of CPU-only wheels on machines where the default
# index would pick a CUDA build.
TORCH_PIP_ARGS ?=
OUT ?= out/demo

.PHONY: setup demo test test-slow bench node-deps clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gesticulator needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned exactly, installed first, so nothing later can pull a CUDA build
	$(PY) -m pip install --quiet torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(VENV)/bin/gesticulator speak @examples/talk.txt --seed 0 -o $(OUT)
	@echo "Open $(OUT)/preview.mp4 (preview with sound), motion.bvh in Blender, motion.glb in any glTF viewer;"
	@echo "timeline.json says what was chosen and why. Browse it: $(VENV)/bin/gesticulator view $(OUT)"

# The Khronos glTF validator (npm) checks every GLB the tests write; without npm those tests skip.
node-deps:
	@if command -v npm >/dev/null 2>&1; then \
		[ -d tests/gltf_validator/node_modules ] || npm ci --prefix tests/gltf_validator --no-audit --no-fund --silent; \
	else echo "npm not found: GLB validation tests will be skipped"; fi

test: setup node-deps
	$(PY) -m pytest -q

# Slow tests also check the Ray engine against the local one (the `ray` extra).
test-slow: setup node-deps
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	$(PY) -m pytest -q -m slow

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) out build dist tests/gltf_validator/node_modules
