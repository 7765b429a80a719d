#!/bin/sh
# Trim a virtualenv that goes into an image: what no role runs at run time. The Dockerfile's build
# stages call it after the last `pip install`; the service image's warm-up run (a training, the
# migrations, the roles' imports) then proves nothing it needs was taken.
#   deploy/slim-venv.sh VENV
set -eu
venv=$1
site=$(echo "$venv"/lib/python3*/site-packages)
[ -d "$site" ] || { echo "slim-venv: no site-packages under $venv" >&2; exit 2; }

# The test suites packages ship inside themselves (pandas alone: 46 MB). Nothing imports them.
find "$site" -type d -name tests -prune -exec rm -rf {} +

if [ -d "$site/torch" ]; then
  # PyTorch's C++ test programs and the C++ headers for building extensions (the image has no
  # compiler, so neither extensions nor torch.compile's C++ code could be built with them).
  rm -rf "$site/torch/test" "$site/torch/include"
  find "$site/torch/bin" -type f ! -name torch_shm_manager -delete
  # The static symbol tables of its largest libraries (90 MB for libtorch_cpu alone): the dynamic
  # symbols, which loading and linking use, stay.
  for library in libtorch_cpu.so libtorch_python.so libtorch_cuda.so; do
    if [ -f "$site/torch/lib/$library" ]; then
      strip --strip-unneeded "$site/torch/lib/$library"
    fi
  done
fi

# The static symbol tables of the other compiled libraries that auditwheel did not rewrite
# (curl_cffi's alone is 33 of its 40 MB): loading uses the dynamic symbols, which
# --strip-unneeded keeps. Libraries that patchelf rewrote (those with an RPATH/RUNPATH, and the
# `*.libs` directories they point to: numpy's, scipy's) break when stripped, so they are left as
# they are. A stage without binutils (the MLflow server's) strips nothing. The warm-up run after
# this imports each stripped package.
if command -v strip >/dev/null 2>&1; then
  find "$site" \( -path "$site/torch" -o -name "*.libs" \) -prune -o -type f \( -name "*.so" -o -name "*.so.*" \) -print \
    | while read -r library; do
        if ! readelf -d "$library" 2>/dev/null | grep -qE "RPATH|RUNPATH"; then
          strip --strip-unneeded "$library"
        fi
      done
fi

# Nothing is installed at run time. (setuptools stays: torch declares it.)
"$venv/bin/python" -m pip uninstall --yes --quiet pip
