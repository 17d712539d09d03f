#!/usr/bin/env bash
# Prints btslave's benchmark figures next to their references and goals.
# Usage: bench/run.sh [cache|transfer|rss|scrape|tracker|crowd|all]
# (default all; crowd, issue #4's 20-minute swarm scenario with real
# programs, runs only when named)
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
  go test ./repeater -run '^$' -bench 'BenchmarkTransfer' -benchtime 3x -count 6 > "$out/transfer"
  awk '/^BenchmarkTransfer/ {split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); for (i = 1; i <= NF; i++) if ($i == "MB/s") s[a[2]] += $(i-1); n[a[2]]++}
       END {w = s["wire"]/n["wire"]; b = s["bare"]/n["bare"];
            printf "  bare %.0f MB/s, wire %.0f MB/s: wire = %.1f%% of bare (mean of %d runs)\n", b, w, 100*w/b, n["wire"]}' "$out/transfer"
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
