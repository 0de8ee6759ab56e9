#!/bin/sh
# Debian's dataset-fashion-mnist (70k 28x28 IDX files under /usr/share/datasets/fashion-mnist).
# A fresh machine has empty apt lists and apt may be busy: try, update the lists, retry (waiting
# for apt's lock), and say in one line if it still cannot. Never fails the build: the
# Fashion-MNIST tests skip without the data, and say so.
DIR=/usr/share/datasets/fashion-mnist
[ -d "$DIR" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
	echo "note: dataset-fashion-mnist not installed (needs apt-get as root); Fashion-MNIST tests will skip"
	exit 0
fi
install() { apt-get install -y -q -o DPkg::Lock::Timeout=120 dataset-fashion-mnist >/dev/null 2>&1; }
install && exit 0
apt-get update -q -o DPkg::Lock::Timeout=120 >/dev/null 2>&1
install && exit 0
echo "note: apt-get could not install dataset-fashion-mnist (even after apt-get update); Fashion-MNIST tests will skip"
