#!/usr/bin/env bash
# bench/engine.py on a GPU machine (no network there): builds llama-cpp-python with CUDA
# from a trimmed source tarball, writes a random gpt-oss model with gpt-oss-20b's attention
# shape (24 layers, 64 heads, 8 KV heads, 2880 wide; 4 experts), and runs the benchmark
# with every layer offloaded. Stages: `build-and-model` (model written in the background),
# then `bench`; `all` does both in one call. Inputs: .gpu/llama_cpp_python-*.tar.gz, wheels
# in .whl/, .cache/llama.cpp (see the engine issue's note for how they were made).
set -euo pipefail
stage=${1:?stage: build-and-model | bench | all}
if [ "$stage" = all ]; then "$0" build-and-model && exec "$0" bench; fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
case "$stage" in
build-and-model)
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
  setsid nohup python3 tests/fixtures/tiny_gpt_oss.py /tmp/bench-gpt-oss.gguf .cache/llama.cpp bench \
    >/tmp/model.log 2>&1 < /dev/null &
  mkdir -p /tmp/src && tar -xzf .gpu/llama_cpp_python-*.tar.gz -C /tmp/src
  # The CPU part as everywhere (every variant, chosen at start), the CUDA backend beside it.
  CMAKE_ARGS="$(sed -n 's/^LLAMA_CMAKE_ARGS := //p' Makefile) -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install -q --no-deps --no-build-isolation --target /tmp/site /tmp/src/llama_cpp_python-*
  python3 -c "from engine import backends; print(backends.load().describe(), 'free GPU bytes:', backends.gpu_free_memory())"
  ;;
bench)
  while ! [ -s /tmp/bench-gpt-oss.gguf ]; do sleep 5; tail -1 /tmp/model.log; done
  ls -la /tmp/bench-gpt-oss.gguf
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
  # llama_cpp is imported before numpy: the other order segfaulted with this image's numpy 2.5
  # (its OpenMP runtime against llama.cpp's), a crash seen only on the GPU machine.
  python3 -c "import llama_cpp, runpy, sys
sys.argv = ['bench/engine.py', '--model', '/tmp/bench-gpt-oss.gguf', '--gpu-layers', '999', '--tokens', '256', '--context', '16384', '--repeat', '5']
runpy.run_path('bench/engine.py', run_name='__main__')" 2>&1 | grep -v '^llama_kv\|^ggml_cuda\|Device 0' | tee "$OUT/engine-gpu.txt"
  ;;
esac
