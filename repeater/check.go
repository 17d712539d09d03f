package repeater

import (
	"errors"
	"fmt"

	"github.com/anacrolix/torrent/metainfo"
)

// ErrBadInfo is returned for a torrent whose info dictionary cannot be
// served.
var ErrBadInfo = errors.New("bad torrent info")

// CheckInfo checks what the client would otherwise trip over later: piece
// length, piece hashes and sizes that agree with each other.
func CheckInfo(info *metainfo.Info) error {
	switch {
	case info.PieceLength <= 0:
		return fmt.Errorf("%w: piece length %d", ErrBadInfo, info.PieceLength)
	case info.PieceLength > 64<<20:
		return fmt.Errorf("%w: piece length %d is over 64 MiB", ErrBadInfo, info.PieceLength)
	case info.HasV1() && len(info.Pieces)%20 != 0:
		return fmt.Errorf("%w: pieces field is %d bytes, not a multiple of 20", ErrBadInfo, len(info.Pieces))
	}
	var total int64
	for _, f := range info.UpvertedFiles() {
		if f.Length < 0 {
			return fmt.Errorf("%w: file %q has length %d", ErrBadInfo, f.DisplayPath(info), f.Length)
		}
		total += f.Length
	}
	if total <= 0 {
		return fmt.Errorf("%w: no data (total length %d)", ErrBadInfo, total)
	}
	if info.HasV1() {
		if want := (total + info.PieceLength - 1) / info.PieceLength; int64(len(info.Pieces)/20) != want {
			return fmt.Errorf("%w: %d piece hashes for %d bytes in %d-byte pieces (want %d)", ErrBadInfo, len(info.Pieces)/20, total, info.PieceLength, want)
		}
	}
	return nil
}
