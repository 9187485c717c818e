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

# FBX export runs Blender in its own process. `make blender` puts bpy (from PyPI) in its own
# environment: it pins its own numpy, so never in $(VENV). bpy 5.0 is built for Python 3.11 only;
# with another Python, pass one (make blender BLENDER_PYTHON=python3.11) or `apt install blender`.
BLENDER_VENV ?= .venv-blender
BLENDER_PYTHON ?= $(PYTHON)
BPY_VERSION ?= 5.0.1
# `make test-blender BLENDER=/usr/bin/blender` tests against an installed Blender instead.
BLENDER ?=

.PHONY: setup demo test test-slow test-blender blender bench node-deps clean

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
		[ -d tests/three_vrm/node_modules ] || npm ci --prefix tests/three_vrm --no-audit --no-fund --silent; \
	else echo "npm not found: GLB validation and three-vrm tests will be skipped"; fi

test: setup node-deps
	$(PY) -m pytest -q

# Slow tests also check the Ray engine against the local one (the `ray` extra).
test-slow: setup node-deps
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	$(PY) -m pytest -q -m slow

blender: $(BLENDER_VENV)/.installed

$(BLENDER_VENV)/.installed:
	@$(BLENDER_PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else f"bpy $(BPY_VERSION) needs Python 3.11, $(BLENDER_PYTHON) is {v[0]}.{v[1]}: run make blender BLENDER_PYTHON=python3.11, or apt install blender (then FBX export finds it on PATH)")'
	$(BLENDER_PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/python -m pip install --quiet --upgrade pip
	# about 1 GB and a minute: Blender itself, as a Python module
	$(BLENDER_VENV)/bin/python -m pip install --quiet bpy==$(BPY_VERSION)
	$(BLENDER_VENV)/bin/python -c 'import bpy; print("bpy", bpy.app.version_string, "ready in $(BLENDER_VENV)")'
	touch $@

# The tests that run Blender for real (FBX export and re-import, BVH/GLB opened in Blender).
test-blender: setup
ifeq ($(BLENDER),)
	$(MAKE) blender
	GESTICULATOR_BLENDER=$(abspath $(BLENDER_VENV))/bin/python GESTICULATOR_BLENDER_PYTHON=$(abspath $(BLENDER_VENV))/bin/python $(PY) -m pytest -q -m blender
else
	GESTICULATOR_BLENDER=$(BLENDER) $(PY) -m pytest -q -m blender
endif

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(BLENDER_VENV) out build dist tests/gltf_validator/node_modules
