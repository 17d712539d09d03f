#!/usr/bin/env bash
# Prints btslave's benchmark figures next to their references and goals.
# Usage: bench/run.sh [cache|transfer|rss|scrape|tracker|crowd|matrix|bep56|demo|publish|master|friends|btfs|all]
# (default all; crowd, issue #4's 20-minute swarm scenario, matrix, issue
# #9's 40-minute matrix of swarms, and bep56, issue #12's compression
# figures (about 8 minutes), run real programs and only when named;
# CROWD_CELLS=seed/leechers/KiB[/cap=256/seed=2048...],... runs some
# cells of the matrix, or swarms outside it,
# CROWD_HELPERS=none,btslave,share some of its helpers (fullseed: a ceiling,
# a second seed in the helper's place), CROWD_RUNS=3 each
# cell three times with a median row per helper; as root the matrix runs
# in a network namespace of its own, where Transmission dials its peers,
# CROWD_NETNS=0 on loopback)
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
  echo "== crowd matrix (issue #9): 16 MiB, seed 768 KiB/s, 6 leechers at 192 KiB/s, helpers 1.5 MiB/s with a 10 MiB cache; about 4 min a cell =="
  echo "   goal: gain >= 0.6 (moonshot 0.8) at ratio >= 4 in every cell, ahead of libtorrent share mode; min>1m (lowest ratio past the first minute) >= 1"
  # Rows print as each run ends (with CROWD_RUNS, median rows after each
  # cell); the whole log stays in $out/matrix.
  run=(go test ./repeater -run '^$' -bench 'BenchmarkCrowdMatrix' -benchtime 1x -timeout $((90 * ${CROWD_RUNS:-1}))m)
  # Transmission never dials 127.0.0.0/8 peers, so on loopback its
  # leechers are fed only by those that dial them. Where it can (root,
  # unshare -n), the matrix runs in a network namespace of its own whose lo
  # also holds 10.77.0.0/16, where every program dials as on the Internet;
  # internal/lab/netns.go checks the namespace has no other interface.
  # CROWD_NETNS=0 runs it on loopback.
  netns=${CROWD_NETNS:-}
  if [[ -z $netns ]]; then
    if unshare -n true 2>/dev/null && command -v ip > /dev/null; then netns=1; else netns=0; fi
  fi
  if [[ $netns == 0 ]]; then
    echo "   on loopback, where Transmission never dials its peers (no network namespace: CROWD_NETNS=0 or not root)"
  else
    echo "   in a network namespace of its own, peers on 10.77.0.0/16, where Transmission dials its peers"
    go test -c -o "$out/repeater.test" ./repeater
    run=(unshare -n sh -c 'ip link set lo up && ip route add local 10.77.0.0/16 dev lo && cd repeater &&
      BTSLAVE_LAB_NETNS=10.77.0.0/16 exec "$0" "$@"' "$out/repeater.test"
      -test.run '^$' -test.bench 'BenchmarkCrowdMatrix' -test.benchtime 1x -test.timeout $((90 * ${CROWD_RUNS:-1}))m)
  fi
  flock /tmp/btslave-bench.lock "${run[@]}" 2>&1 |
    tee "$out/matrix" | grep --line-buffered -E '^(cell|transmission/|qbittorrent/)' ||
    { tail -50 "$out/matrix"; exit 1; }
fi

if [[ $what == bep56 ]]; then
  echo "== BEP 56: ${BTSLAVE_BEP56_MIB:-128} MiB between two btslave processes through a counting loopback proxy =="
  echo "   uncapped: mean of 3 runs; capped at 1 MiB/s each way: one run"
  go test ./repeater -run '^$' -bench 'BenchmarkBEP56/(text|random|half)/' -benchtime 1x -count 3 -timeout 60m > "$out/bep56" 2>&1 || { tail -30 "$out/bep56"; exit 1; }
  go test ./repeater -run '^$' -bench 'BenchmarkBEP56/text-1MiBps/' -benchtime 1x -count 1 -timeout 60m >> "$out/bep56" 2>&1 || { tail -30 "$out/bep56"; exit 1; }
  awk '/^BenchmarkBEP56\// {
         split($1, a, "/"); d = a[2]; m = a[3]; sub(/-[0-9]+$/, "", m); k = d "/" m
         for (i = 3; i < NF; i += 2) v[k, $(i+1)] += $i
         n[k]++; if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
       }
       function g(k, f) { return v[k, f] / n[k] }
       function pct(x) { return sprintf("%+.1f%%", 100 * x) }
       END {
         printf "  %-18s %9s %9s %8s %11s %12s\n", "data/mode", "wire MiB", "wire/raw", "wall s", "seed CPU s", "leech CPU s"
         for (i = 1; i <= nk; i++) { k = order[i]; split(k, p, "/"); base = p[1] "/plain"
           printf "  %-18s %9.1f %9.3f %8.2f %11.2f %12.2f\n", k, g(k, "wire-MiB"), g(k, "wire-MiB") / g(base, "wire-MiB"), g(k, "wall-s"), g(k, "seed-cpu-s"), g(k, "leech-cpu-s") }
         printf "  goal: text wire <= 1/3 of raw: %.3f\n", g("text/zstd", "wire-MiB") / g("text/plain", "wire-MiB")
         printf "  goal: random grows <= 0.5%%: %s on the wire\n", pct(g("random/zstd", "wire-MiB") / g("random/plain", "wire-MiB") - 1)
         printf "  goal: random costs <= 5%% more CPU: seed %s, leech %s, both %s\n", pct(g("random/zstd", "seed-cpu-s") / g("random/plain", "seed-cpu-s") - 1),
           pct(g("random/zstd", "leech-cpu-s") / g("random/plain", "leech-cpu-s") - 1),
           pct((g("random/zstd", "seed-cpu-s") + g("random/zstd", "leech-cpu-s")) / (g("random/plain", "seed-cpu-s") + g("random/plain", "leech-cpu-s")) - 1)
         printf "  goal: text on a 1 MiB/s link >= 2.5x sooner: %.1f s against %.1f s, %.1fx\n", g("text-1MiBps/zstd", "wall-s"), g("text-1MiBps/plain", "wall-s"),
           g("text-1MiBps/plain", "wall-s") / g("text-1MiBps/zstd", "wall-s")
       }' "$out/bep56"
  echo "== decompression on one core, layer parsing included (goal >= 500 MB/s), and per-connection memory (goal <= 1 MiB) =="
  go test ./repeater/wire -run '^$' -bench 'BenchmarkDecompress|BenchmarkConnMemory' -benchtime 3x > "$out/wire" 2>&1 || { tail -30 "$out/wire"; exit 1; }
  awk '/^BenchmarkDecompress\// {split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); for (i = 1; i <= NF; i++) if ($i == "MB/s") printf "  decompress %-5s %6.0f MB/s (Go source, %s of its size on the wire)\n", a[2], $(i-1), $(i+1)}
       /^BenchmarkConnMemory\// {split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); for (i = 1; i <= NF; i++) if ($i == "B/conn") printf "  memory     %-5s %6.0f KiB per connection\n", a[2], $(i-1) / 1024}' "$out/wire"
fi

if [[ $what == demo ]]; then
  echo "== btslave demo: the default seed-starved swarm without and with the repeater (goal: gain >= 0.1, the helper visibly helps, at ratio > 1) =="
  flock /tmp/btslave-bench.lock go test ./internal/demo -run '^$' -bench BenchmarkDemo -benchtime 1x | tee "$out/demo" |
    awk '/^BenchmarkDemo/ {for (i = 1; i <= NF; i++) v[$(i+1)] = $i; printf "  crowd mean %.1f s without help, %.1f s with btslave: gain %.2f (goal >= 0.1); ratio %.2f (goal > 1)\n", v["without-s"], v["with-s"], v["gain"], v["ratio"]}'
fi

if [[ $what == publish ]]; then
  # Issue #14's hashing figures, about 4 minutes (bench/publish.sh).
  bench/publish.sh
fi

if [[ $what == friends ]]; then
  # Issue #11: A's master alone, with B's help, with B's and C's
  # (cashin_helpers 2): real transmission-daemon masters and seed,
  # opentracker; 8 MiB (FRIENDS_SIZE_MIB), about 3 minutes. Each run also
  # prints who sent A's master what, and what the seed sent each peer.
  echo "== friends: how much sooner A's master finishes with B's (and C's) help than alone, and each side's ledger =="
  FRIENDS_BENCH=1 flock /tmp/btslave-bench.lock go test ./cmd/btslave -run '^TestFriendsBench$' -count=1 -timeout 10m -v |
    grep -E '^  |FAIL|ok' || true
fi

if [[ $what == master ]]; then
  # Issue #10's flash crowd (real programs, loopback); long: 128 MiB and
  # k = 0..3 take over an hour on 2 cores. MASTER_SIZE_MIB, MASTER_K
  # ("0 1") and MASTER_QBT=1 (qbittorrent-nox master) scale it. Per k it
  # prints the helpers' bytes, their overlap and the master's intake by
  # source (a Transmission master's per-peer rates, 10 s timeline).
  echo "== master helped by k btslaves (goal: master rate +0.45*k*U, crowd <= 5% slower) =="
  MASTER_BENCH=1 flock /tmp/btslave-bench.lock go test ./master/helper -run '^TestMasterBench$' -count=1 -timeout 3h -v |
    grep -E '^  |FAIL|ok' || true
fi

if [[ $what == btfs ]]; then
  # Issue #16 (real programs, loopback, FUSE). BTFS_SIZE_MIB (default 256)
  # sizes the sequential run, BTFS_TTFB_MIB (default 1024) the TTFB torrent;
  # BTFS_TTFB_SEED=transmission seeds that one from Transmission instead of
  # an anacrolix client.
  echo "== btfs: sequential read of ${BTFS_SIZE_MIB:-256} MiB through the mount (64 MiB cache) vs aria2c, same Transmission seed (goal >= 0.9x) =="
  echo "== btfs: time to first byte at random offsets of a ${BTFS_TTFB_MIB:-1024} MiB torrent, seed at 4 MiB/s (goal <= 2 x one piece's time) =="
  BTFS_BENCH=1 flock /tmp/btslave-bench.lock go test ./btfs -run '^TestBenchBTFS(Sequential|TTFB)$' -count=1 -timeout 40m -v > "$out/btfs" 2>&1 ||
    { tail -40 "$out/btfs"; exit 1; }
  grep '^btfs-' "$out/btfs" | sed 's/^btfs-/  /'
fi
