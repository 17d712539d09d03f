#!/usr/bin/env bash
# Installs the real programs the interop tests run, when any is missing.
# Debian packages: opentracker transmission-daemon transmission-cli
# qbittorrent-nox aria2 mktorrent python3-libtorrent chromium fuse3, plus
# gcc for the loopback guard. Safe to run again: it does nothing when all
# are present. It never stops or kills a process: the owner may be running
# their own Transmission or qBittorrent, and policy-rc.d below keeps the
# install from starting any service in the first place.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have opentracker         || need+=(opentracker)
have transmission-daemon || need+=(transmission-daemon)
have transmission-remote || need+=(transmission-cli)
have qbittorrent-nox     || need+=(qbittorrent-nox)
have aria2c              || need+=(aria2)
have mktorrent           || need+=(mktorrent)
have chromium            || need+=(chromium)
have fusermount3         || need+=(fuse3)
have gcc                 || need+=(gcc libc6-dev)
/usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1 || need+=(python3-libtorrent)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if have sudo; then sudo="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${need[*]}" >&2
    exit 1
  fi
fi

# Debian's postinst would start transmission-daemon as a service on its
# defaults (DHT, LSD, UPnP on): forbid service starts while installing.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
