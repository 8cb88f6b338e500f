#!/usr/bin/env bash
# Run HERE (a machine that reaches PyPI), from anywhere in the repo, before a GPU-machine call.
# Prepares what the GPU machine lacks, in ignored folders of the repo root:
#   .whl/                   the wheels of benchmarks/gpu/wheels.txt for CPython 3.12, manylinux x86_64
#   .gpu-pack/site.tar.xz   the same wheels installed (pip --target) and packed as one solid xz tar:
#                           ~29 MiB instead of ~51 MiB of wheels, so that it fits one call with the data
#   .data/fashion-mnist/    the four Fashion-MNIST IDX .gz files (~29.5 MiB)
# and prints what one call would carry against the 64 MiB limit.
# Env: PYTHON (default python3: needs pip), FASHION_MNIST (default /usr/share/datasets/fashion-mnist),
#      NO_PACK=1 to skip the xz pack (two-call mode only needs .whl/ and .data/).
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
HERE=benchmarks/gpu
PY=${PYTHON:-python3}
SRC=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
export PIP_CONSTRAINT=""  # this machine's constraints file caps torch only; irrelevant here

for p in /.whl/ /.data/ /.gpu-pack/ /.gpu-site/ /.gpu-out/ /.gpu-prev/; do
  grep -qxF "$p" .git/info/exclude || echo "$p" >>.git/info/exclude
done

TAGS=(--python-version 3.12 --implementation cp --abi cp312
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64
  --platform manylinux1_x86_64)

echo "== wheels -> .whl/"
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: "${TAGS[@]}" -d .whl -r "$HERE/wheels.txt"
want=$(grep -cvE '^\s*(#|$)' "$HERE/wheels.txt")
got=$(find .whl -maxdepth 1 -type f -name '*.whl' | wc -l)
[ "$want" -eq "$got" ] || { echo "error: $got wheels for $want lines of wheels.txt" >&2; exit 1; }

if [ "${NO_PACK:-0}" != 1 ]; then
  echo "== installed tree -> .gpu-pack/site.tar.xz (xz -9e, one core: about 2 minutes)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip install -q --no-index --no-deps --no-compile --only-binary=:all: "${TAGS[@]}" \
    --target "$tmp/site" .whl/*.whl
  rm -rf "$tmp/site/bin"  # console scripts with this machine's shebang; nothing runs them there
  rm -rf .gpu-pack && mkdir -p .gpu-pack
  tar -C "$tmp/site" --sort=name --owner=0 --group=0 --numeric-owner -cf - . | xz -9e -T1 >.gpu-pack/site.tar.xz
fi

echo "== Fashion-MNIST -> .data/fashion-mnist/"
mkdir -p .data/fashion-mnist
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$SRC/$f.gz" ] || { echo "error: $SRC/$f.gz missing (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
  cp -p "$SRC/$f.gz" .data/fashion-mnist/
done

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
bytes() { du -scb "$@" 2>/dev/null | tail -1 | cut -f1; }
tree=$(git ls-files -z -c -o --exclude-standard | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
  du -cb --files0-from=- | tail -1 | cut -f1)
whl=$(bytes .whl)
data=$(bytes .data)
echo
echo "working tree (tracked + untracked, not ignored): $(mib "$tree")"
echo ".whl/        $(mib "$whl")  ($got wheels)"
echo ".data/       $(mib "$data")"
if [ -f .gpu-pack/site.tar.xz ]; then
  pack=$(bytes .gpu-pack)
  one=$((tree + pack + data))
  echo ".gpu-pack/   $(mib "$pack")"
  echo "one call, carry [.gpu-pack, .data]: $(mib "$one") of 64 MiB"
  [ "$one" -lt $((64 * 1048576)) ] || echo "warning: over 64 MiB: use the two-call mode (README.md)" >&2
fi
echo "two calls: [.whl] $(mib $((tree + whl))), then [.data] $(mib $((tree + data)))"
