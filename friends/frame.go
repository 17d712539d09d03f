package friends

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame bounds one message on the direct channel (type byte and
// payload); a longer length prefix closes the connection.
const MaxFrame = 1 << 20

// ErrFrameTooBig is returned for a frame whose length exceeds MaxFrame.
var ErrFrameTooBig = errors.New("frame exceeds the size limit")

// WriteFrame writes a 4-byte big-endian length (of type + payload), the
// type byte, and the payload.
func WriteFrame(w io.Writer, typ Type, payload []byte) error {
	if 1+len(payload) > MaxFrame {
		return fmt.Errorf("write %v: %d bytes: %w", typ, len(payload), ErrFrameTooBig)
	}
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b, uint32(1+len(payload)))
	b[4] = byte(typ)
	_, err := w.Write(append(b, payload...))
	return err
}

// ReadFrame reads one frame written by WriteFrame.
func ReadFrame(r io.Reader) (Type, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:4]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n == 0 {
		return 0, nil, fmt.Errorf("empty frame: %w", ErrMalformed)
	}
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%d bytes: %w", n, ErrFrameTooBig)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, fmt.Errorf("frame body: %w", io.ErrUnexpectedEOF)
	}
	return Type(b[0]), b[1:], nil
}

// Receive reads one frame and decodes its message.
func Receive(r io.Reader) (Message, error) {
	t, b, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	return Decode(t, b)
}
