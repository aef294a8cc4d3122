#!/bin/sh
# Seed corpora for the parser fuzzers (make fuzz), made by the CLI itself:
#   seeds.sh DBLOCKS_BIN CORPUS_DIR [IDX_DIR]
# manifest/     manifest.json of a tiny training run (dblocks train)
# safetensors/  its block_0.safetensors, and two tiny hand-made files (the block
#               file is 145 KB, mostly data no mutation of which matters)
# npy/          samples .npy (float32) and labels .npy (int32) from dblocks sample
# idx/          small IDX pairs cut from the Fashion-MNIST files (IDX_DIR,
#               default /usr/share/datasets/fashion-mnist), plain and gzip, in
#               the harness's layout: u16 LE labels length, labels file, images file
set -eu
bin=$1 out=$2 data=${3:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dblocks-seeds-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# byte writers (printf with octal escapes: POSIX sh)
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
le16() { printf "\\$(printf %03o $(($1 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))"; }
le64() { le16 $(($1 & 65535)); le16 $(($1 >> 16 & 65535)); le16 0; le16 0; }

mkdir -p "$out/manifest" "$out/safetensors" "$out/npy" "$out/idx"

"$bin" train --out "$tmp/run" --data "$data" --layers 1 --blocks 1 --width 16 --heads 2 --patch 7 --batch 4 --steps 2 --quiet
"$bin" sample --run "$tmp/run" --steps 2 --per-class 1 --npy "$tmp/s.npy" --png "$tmp/s.png"
cp "$tmp/run/manifest.json" "$out/manifest/run.json"
cp "$tmp/run/block_0.safetensors" "$out/safetensors/block_0.safetensors"
cp "$tmp/s.npy" "$out/npy/samples.npy"
cp "$tmp/s_labels.npy" "$out/npy/labels.npy"

# tiny safetensors: JSON header padded with spaces to a multiple of 8, then the data
st() { # $1: name, $2: JSON header, $3: data bytes (printf octal escapes)
  h=$2; while [ $(( ${#h} % 8 )) -ne 0 ]; do h="$h "; done
  { le64 ${#h}; printf '%s' "$h"; printf "$3"; } > "$out/safetensors/$1"
}
st one.safetensors '{"__metadata__":{"block":"0"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' \
  '\000\000\200\077\000\000\000\300'
st two.safetensors '{"b":{"dtype":"F32","shape":[],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1,0],"data_offsets":[0,0]},"c":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}' \
  '\000\000\200\077\000\000\000\300'

# IDX: headers with the image count patched to n, then the first n images/labels
pick() { if [ -f "$1.gz" ]; then gzip -dc "$1.gz"; else cat "$1"; fi; }
# $1: seed name, $2: labels file, $3: images file
pack() { le16 "$(wc -c < "$2")" > "$out/idx/$1"; cat "$2" "$3" >> "$out/idx/$1"; }
for n in 1 3; do
  { be32 2049; be32 $n; pick "$data/train-labels-idx1-ubyte" | tail -c +9 | head -c $n; } > "$tmp/l$n"
  { be32 2051; be32 $n; be32 28; be32 28; pick "$data/train-images-idx3-ubyte" | tail -c +17 | head -c $((n * 784)); } > "$tmp/i$n"
  pack "plain-$n" "$tmp/l$n" "$tmp/i$n"
  gzip -9nc "$tmp/l$n" > "$tmp/l$n.gz"
  gzip -9nc "$tmp/i$n" > "$tmp/i$n.gz"
  pack "gzip-$n" "$tmp/l$n.gz" "$tmp/i$n.gz"
done
# the real files' first bytes: headers promising 60000 images, data cut short
pick "$data/train-labels-idx1-ubyte" | head -c 16 > "$tmp/lt"
pick "$data/train-images-idx3-ubyte" | head -c 800 > "$tmp/it"
pack "truncated" "$tmp/lt" "$tmp/it"
echo "fuzz seeds in $out: $(find "$out" -type f | wc -l) files"
