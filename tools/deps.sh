#!/bin/sh
# Installs the Debian packages dblocks needs, if any is missing.
# As root through apt-get, otherwise through sudo; a clear message if neither works.
PKGS="build-essential ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd clinfo zlib1g-dev libpng-dev libjansson-dev dataset-fashion-mnist oclgrind bible-kjv openmpi-bin libopenmpi-dev libcairo2-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "dblocks: installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"
else
  echo "dblocks: error: packages missing:$missing" >&2
  echo "  run as root, or install them yourself: sudo apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || { echo "dblocks: error: apt-get update failed" >&2; exit 1; }
$SUDO apt-get install -y -qq --no-install-recommends $missing || {
  echo "dblocks: error: apt-get install$missing failed" >&2; exit 1; }
