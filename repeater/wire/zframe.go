package wire

import "math"

// Fixed framing bytes of BEP 56's streams (docs/bep56.md, "Framing"), and
// the sampler's entropy estimate.

// zstd raw frame: magic, Frame_Header_Descriptor 0 (no content size, no
// checksum, no dictionary, not single segment), Window_Descriptor for
// maxWindow (64 KiB: exponent 6). An empty last raw block ends it.
var (
	zstdRawFrame = []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 6 << 3}
	zstdEndFrame = []byte{0x01, 0x00, 0x00}
)

// lz4 frame header: magic, FLG (version 01, independent blocks, no
// checksums, no content size), BD (64 KiB blocks), header checksum.
var lz4Frame = []byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, lz4HeaderChecksum(0x60, 0x40)}

// nlogn[c] is c·log2(c), for the entropy of samples of up to 1024 bytes.
var nlogn = func() (t [1025]float32) {
	for c := 2; c < len(t); c++ {
		t[c] = float32(float64(c) * math.Log2(float64(c)))
	}
	return t
}()

// sampleEntropy estimates the order-0 entropy (bits per byte) of n bytes
// in parts from four 256-byte windows spread over them (the whole when
// shorter than 1 KiB).
func sampleEntropy(parts [][]byte, n int) float64 {
	var counts [256]uint16
	total := 0
	take := func(off, k int) {
		for _, p := range parts {
			if off >= len(p) {
				off -= len(p)
				continue
			}
			m := min(k, len(p)-off)
			for _, b := range p[off : off+m] {
				counts[b]++
			}
			total += m
			k -= m
			off = 0
			if k == 0 {
				return
			}
		}
	}
	if n < 1024 {
		take(0, n)
	} else {
		for i := range 4 {
			take(i*(n-256)/3, 256)
		}
	}
	if total == 0 {
		return 0
	}
	var sum float32
	for _, c := range counts {
		sum += nlogn[c]
	}
	return math.Log2(float64(total)) - float64(sum)/float64(total)
}

// lz4HeaderChecksum is the lz4 frame descriptor's HC byte: the second
// byte of xxHash32 (seed 0) of FLG and BD.
func lz4HeaderChecksum(flg, bd byte) byte {
	const p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
	rotl := func(x uint32, r uint) uint32 { return x<<r | x>>(32-r) }
	h := uint32(p5) + 2
	for _, b := range []byte{flg, bd} {
		h += uint32(b) * p5
		h = rotl(h, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return byte(h >> 8)
}
