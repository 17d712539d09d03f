#!/usr/bin/env bash
# Prints btslave's benchmark figures next to their references and goals.
# Usage: bench/run.sh [cache|transfer|rss|scrape|tracker|crowd|matrix|all]
# (default all; crowd, issue #4's 20-minute swarm scenario, and matrix,
# issue #9's 40-minute matrix of swarms, run real programs and only when
# named; CROWD_CELLS=seed/leechers/KiB,... runs some cells of the matrix)
# Figures are noisy on a busy machine: run it on an idle one.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [[ $what == all || $what == cache ]]; then
  echo "== piece cache vs anacrolix file storage (16 KiB chunks, 256 KiB pieces) =="
  go test ./cache -run '^$' -bench 'BenchmarkWriteAt|BenchmarkReadAt' -benchtime 2s | tee "$out/cache" |
    awk '/^Benchmark/ {for (i = 1; i <= NF; i++) if ($i == "MB/s") printf "  %-45s %10.0f MB/s\n", $1, $(i-1)}'
fi

if [[ $what == all || $what == transfer ]]; then
  echo "== 64 MiB over loopback: wire layer vs bare anacrolix TCP (goal: wire >= 95% of bare) =="
  # Interleaved runs (bare, wire, bare, ...) so that drift in the machine's
  # load hits both alike; the median and the spread of each, and whether
  # the spread swamps the difference.
  go test -c -o "$out/repeater.test" ./repeater
  for i in 1 2 3 4 5 6 7; do
    for mode in bare wire; do
      (cd repeater && "$out/repeater.test" -test.run '^$' -test.bench "BenchmarkTransfer/$mode\$" -test.benchtime 3x) |
        awk -v m="$mode" '/^BenchmarkTransfer/ {for (i = 1; i <= NF; i++) if ($i == "MB/s") print m, $(i-1)}' >> "$out/transfer"
    done
  done
  for mode in bare wire; do
    awk -v m="$mode" '$1 == m {print $2}' "$out/transfer" | sort -n > "$out/$mode"
  done
  paste -d' ' "$out/bare" "$out/wire" | awk '{b[NR] = $1; w[NR] = $2} END {
    mid = int((NR + 1) / 2); bm = b[mid]; wm = w[mid];
    printf "  bare median %.0f MB/s (spread %.0f-%.0f), wire median %.0f MB/s (spread %.0f-%.0f), %d runs each\n", bm, b[1], b[NR], wm, w[1], w[NR], NR;
    printf "  wire = %.1f%% of bare", 100 * wm / bm;
    if (w[1] <= b[NR] && b[1] <= w[NR]) printf " -- the spreads overlap: the difference is within the noise";
    printf "\n" }'
fi

if [[ $what == all || $what == rss ]]; then
  echo "== peak RSS of a repeater serving 64 MiB through a 16 MiB cache to 2 leechers (goal <= 64 MiB) =="
  go test ./repeater -run '^$' -bench 'BenchmarkPartialSeedRSS' -benchtime 3x -v > "$out/rss"
  grep -o 'peak RSS [0-9.]* MiB' "$out/rss" | awk '{printf "  run %d: %s MiB\n", NR, $3}'
fi

if [[ $what == all || $what == scrape ]]; then
  echo "== scrape 10,000 info-hashes from a loopback opentracker, fresh scraper each run (goal: udp <= 1 s, http <= 2 s) =="
  go test ./repeater/scrape -run '^$' -bench 'BenchmarkScrape10k' -benchtime 5x > "$out/scrape"
  awk '/^BenchmarkScrape10k\// {split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); goal = (a[2] == "udp") ? 1 : 2;
       for (i = 1; i <= NF; i++) if ($i == "s/10k") printf "  %s: %.3f s / 10k hashes (goal <= %d s)\n", a[2], $(i-1), goal}' "$out/scrape"
fi

if [[ $what == all || $what == tracker ]]; then
  # About 3 minutes: both trackers are loaded with a million peers.
  bin="$out/btslave"
  go build -o "$bin" ./cmd/btslave
  BTSLAVE_BIN=$bin go test ./tracker -run '^$' -bench 'BenchmarkVsOpentracker$' -benchtime 1x -timeout 30m > "$out/tracker" 2>&1 ||
    { tail -50 "$out/tracker"; exit 1; }
  sed -n '/^== tracker/,/HTTP connections opened/p' "$out/tracker"
fi

if [[ $what == crowd ]]; then
  echo "== crowd: 128 MiB, Transmission seed 1 MiB/s, 6 leechers (3 aria2, 3 libtorrent) at 256 KiB/s =="
  echo "   helpers: none | btslave (2 MiB/s, 32 MiB cache) | libtorrent share mode (target 3, 2 MiB/s)"
  echo "   goal: btslave ratio >= 4 (moonshot 6), crowd mean >= 30% faster than none, ahead of share mode"
  go test ./repeater -run '^$' -bench 'BenchmarkCrowd' -benchtime 1x -timeout 60m -v > "$out/crowd" 2>&1 || { tail -50 "$out/crowd"; exit 1; }
  grep -E 'leechers mean' "$out/crowd" | sed -E 's/^ *[a-z_]+\.go:[0-9]+: /  /'
  awk '/^BenchmarkCrowd/ {for (i = 3; i < NF; i += 2) printf "  %-28s %8.2f\n", $(i+1), $i}' "$out/crowd"
fi

if [[ $what == matrix ]]; then
  echo "== crowd matrix (issue #9): 24 MiB, seed 512 KiB/s, 6 leechers at 128 KiB/s, helpers 1 MiB/s with a 16 MiB cache =="
  echo "   goal: gain >= 0.6 (moonshot 0.8) at ratio >= 4 in every cell, ahead of libtorrent share mode"
  go test ./repeater -run '^$' -bench 'BenchmarkCrowdMatrix' -benchtime 1x -timeout 90m > "$out/matrix" 2>&1 || { tail -50 "$out/matrix"; exit 1; }
  grep -E '^(cell|transmission/|qbittorrent/)' "$out/matrix"
fi
