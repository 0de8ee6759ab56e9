#!/bin/sh
# Debian's gnugo (GNU Go, which speaks GTP; the binary lands in /usr/games, not on every PATH).
# A fresh machine has empty apt lists and apt may be busy: try, update the lists, retry (waiting
# for apt's lock), and say in one line if it still cannot. Never fails the build: the tests that
# need GNU Go skip without it, and say so.
{ command -v gnugo || [ -x /usr/games/gnugo ]; } >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
	echo "note: gnugo not installed (needs apt-get as root); the GNU Go tests will skip"
	exit 0
fi
install() { apt-get install -y -q -o DPkg::Lock::Timeout=120 gnugo >/dev/null 2>&1; }
install && exit 0
apt-get update -q -o DPkg::Lock::Timeout=120 >/dev/null 2>&1
install && exit 0
echo "note: apt-get could not install gnugo (even after apt-get update); the GNU Go tests will skip"
