#!/usr/bin/env bash
# Hashing throughput of "btslave publish" on one 2 GiB file of random
# bytes, from the page cache and cold, beside mktorrent (v1, -t 2) and
# python3-libtorrent's create_torrent (hybrid; the v2 tool Debian offers).
# Same piece length (2 MiB, what btslave picks for 2 GiB) for all.
# Cold: /proc/sys/vm/drop_caches is not writable here, so each cold run
# first drops the file's pages with posix_fadvise(DONTNEED) (dd
# iflag=nocache count=0), and fincore shows what stayed cached.
# Run by bench/run.sh publish; BTSLAVE_PUBLISH_MIB sets the size.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${BTSLAVE_PUBLISH_MIB:-2048}
runs=${BTSLAVE_PUBLISH_RUNS:-3}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/btslave-publish.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/btslave" ./cmd/btslave
head -c "$((mib << 20))" /dev/urandom > "$work/data.bin"
sync "$work/data.bin"
bytes=$((mib << 20))

drop() { dd if="$work/data.bin" iflag=nocache count=0 status=none; }
warm() { cat "$work/data.bin" > /dev/null; }
cached() { fincore -n -b -o RES "$work/data.bin" 2>/dev/null | awk '{printf "%.0f%%", 100 * $1 / '"$bytes"'}'; }

lt_create() {
  /usr/bin/python3 - "$work/data.bin" "$work/lt.torrent" <<'PY'
import sys, libtorrent as lt, os
fs = lt.file_storage(); lt.add_files(fs, sys.argv[1])
ct = lt.create_torrent(fs, 2 << 20)
lt.set_piece_hashes(ct, os.path.dirname(sys.argv[1]))
open(sys.argv[2], "wb").write(lt.bencode(ct.generate()))
PY
}

declare -A tool=(
  [btslave-hybrid]="$work/btslave publish --local $work/data.bin --no-tracker --piece-size 2MiB --out $work/b.torrent"
  [btslave-v1]="$work/btslave publish --local $work/data.bin --no-tracker --format v1 --piece-size 2MiB --out $work/b1.torrent"
  [btslave-v2]="$work/btslave publish --local $work/data.bin --no-tracker --format v2 --piece-size 2MiB --out $work/b2.torrent"
  [mktorrent-v1]="mktorrent -t 2 -l 21 -a http://127.0.0.1:1/announce -o $work/m.torrent $work/data.bin"
  [libtorrent-hybrid]="lt_create"
)
order=(btslave-hybrid mktorrent-v1 btslave-v1 btslave-v2 libtorrent-hybrid)

# One run of a tool: prints "MB/s CPU-seconds-per-GiB" (user+sys of the
# tool and its children, from bash's time).
one() { # mode name
  local mode=$1 name=$2 out
  rm -f "$work"/*.torrent
  if [[ $mode == cold ]]; then drop; else warm; fi
  cached > "$work/pre"
  out=$( { TIMEFORMAT='%R %U %S'; time eval "${tool[$name]}" > /dev/null; } 2>&1 | tail -1)
  awk -v b=$bytes -v t="$out" 'BEGIN {split(t, x, " "); printf "%.0f %.2f\n", b / 1e6 / x[1], (x[2] + x[3]) / (b / 2^30)}'
}

# The tools take turns within each run, so that other load on the
# machine falls on all of them alike; the median of the runs is printed,
# with the CPU time per GiB, which load does not change much.
declare -A res pre
for mode in cache cold; do
  for ((i = 0; i < runs; i++)); do
    for name in "${order[@]}"; do
      res[$mode $name]+="$(one "$mode" "$name")"$'\n'
      [[ $i == 0 ]] && pre[$mode $name]=$(cat "$work/pre")
    done
  done
done

echo "== publish: hashing a ${mib} MiB file, 2 MiB pieces, $(nproc) cores; median of $runs runs =="
echo "   goal: btslave-hybrid >= mktorrent-v1 (-t 2), cold and from the page cache"
for mode in cache cold; do
  for name in "${order[@]}"; do
    printf '%s' "${res[$mode $name]}" | sort -n | awk -v n="$name" -v m="$mode" -v c="${pre[$mode $name]}" '
      NF {v[++k] = $1; cpu[k] = $2} END {
      printf "  %-6s %-18s %6d MB/s  (runs %s, CPU %.2f s/GiB, page cache before %s)\n", m, n, v[int((k + 1) / 2)], v[1] "-" v[k], cpu[int((k + 1) / 2)], c }'
  done
done
