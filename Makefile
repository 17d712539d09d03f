# btslave's test entry point: `make test` installs the real programs the
# interop tests need (Debian packages, when missing), then checks formatting,
# vets, and runs every test with the race detector.
GO ?= go

.PHONY: test deps fmt-check vet race build fuzz bench

test: deps fmt-check vet race

deps:
	internal/lab/install-deps.sh

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -timeout 25m ./...

build:
	$(GO) build -o btslave ./cmd/btslave

# Short fuzzing runs of every fuzz target (the seed corpora run in `test`).
fuzz:
	$(GO) test ./config -run '^$$' -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./repeater/wire -run '^$$' -fuzz FuzzRead -fuzztime 60s
	$(GO) test ./repeater/wire -run '^$$' -fuzz FuzzWrite -fuzztime 60s
	$(GO) test ./repeater/wire -run '^$$' -fuzz FuzzHybrid -fuzztime 60s
	$(GO) test ./repeater/wire -run '^$$' -fuzz FuzzDecompress -fuzztime 60s
	$(GO) test ./repeater/wire -run '^$$' -fuzz FuzzCompressRoundTrip -fuzztime 60s
	$(GO) test ./cache -run '^$$' -fuzz FuzzCache -fuzztime 60s
	$(GO) test ./internal/daemon -run '^$$' -fuzz FuzzSwarmRecord -fuzztime 60s
	$(GO) test ./internal/torrentfile -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 60s
	$(GO) test ./internal/torrentfile -run '^$$' -fuzz '^FuzzScan$$' -fuzztime 60s
	$(GO) test ./cmd/btslave -run '^$$' -fuzz '^FuzzRepeatRequest$$' -fuzztime 60s
	$(GO) test ./feeds -run '^$$' -fuzz FuzzParseFeed -fuzztime 60s
	$(GO) test ./feeds -run '^$$' -fuzz FuzzParseList -fuzztime 60s
	$(GO) test ./master/transmission -run '^$$' -fuzz FuzzDecode -fuzztime 60s
	$(GO) test ./master/qbittorrent -run '^$$' -fuzz FuzzDecode -fuzztime 60s
	$(GO) test ./feeds -run '^$$' -fuzz FuzzParseTorrent -fuzztime 60s
	$(GO) test ./repeater/scrape -run '^$$' -fuzz FuzzHTTPScrapeReply -fuzztime 60s
	$(GO) test ./repeater/scrape -run '^$$' -fuzz FuzzUDPScrapeReply -fuzztime 60s
	$(GO) test ./repeater/announce -run '^$$' -fuzz FuzzParseHTTPReply -fuzztime 60s
	$(GO) test ./repeater/announce -run '^$$' -fuzz FuzzParseUDPReply -fuzztime 60s
	$(GO) test ./internal/torrentfile -run '^$$' -fuzz FuzzScan -fuzztime 60s
	$(GO) test ./internal/torrentfile -run '^$$' -fuzz FuzzParseInfo -fuzztime 60s
	$(GO) test ./friends -run '^$$' -fuzz '^FuzzParseInvite$$' -fuzztime 60s
	$(GO) test ./friends -run '^$$' -fuzz '^FuzzIDFromString$$' -fuzztime 60s
	$(GO) test ./friends -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60s
	$(GO) test ./friends -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 60s
	$(GO) test ./friends -run '^$$' -fuzz '^FuzzParseSwarmHello$$' -fuzztime 60s
	$(GO) test ./tracker -run '^$$' -fuzz FuzzParseAnnounceQuery -fuzztime 60s
	$(GO) test ./tracker -run '^$$' -fuzz FuzzParseUDPRequest -fuzztime 60s
	$(GO) test ./publish -run '^$$' -fuzz FuzzCreate -fuzztime 60s
	$(GO) test ./publish -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 60s
	$(GO) test ./tracker -run '^$$' -fuzz FuzzParseSyncPacket -fuzztime 60s
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzSameOrigin -fuzztime 60s
	$(GO) test ./ledger -run '^$$' -fuzz FuzzUnmarshalIOU -fuzztime 60s
	$(GO) test ./ledger -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 60s

bench:
	bench/run.sh
