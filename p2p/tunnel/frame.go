package tunnel

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/mynetwork/mynetwork/internal/packet"
)

// MaxFrame is the largest packet a frame can carry: the 2-byte length limit.
const MaxFrame = 0xFFFF

// ErrEmptyFrame is returned for a frame of length zero, which no IP packet has.
var ErrEmptyFrame = errors.New("empty frame")

// ErrFrameTooLarge is returned for a frame longer than the reader's buffer:
// the stream cannot be resynchronised after it.
var ErrFrameTooLarge = errors.New("frame larger than the packet limit")

// WriteFrame writes one packet as a frame: 2-byte big-endian length, then
// the packet. It buffers; the caller flushes once per batch.
func WriteFrame(w *bufio.Writer, pkt []byte) error {
	if len(pkt) == 0 || len(pkt) > MaxFrame {
		return fmt.Errorf("packet of %d bytes cannot be framed (1..%d)", len(pkt), MaxFrame)
	}
	return writeSmall(w, nil, pkt)
}

// noOffload is a virtio-net header that asks for nothing.
var noOffload [packet.VirtioHdrLen]byte

// writeSmall buffers a frame (no check: see WriteFrame): the packet's
// length, hdr (empty on a plain stream, a virtio-net header on a GSO one),
// then the packet.
func writeSmall(w *bufio.Writer, hdr, pkt []byte) error {
	// Byte by byte: a length array handed to Write would escape to the
	// heap, an allocation per frame.
	w.WriteByte(byte(len(pkt) >> 8))
	w.WriteByte(byte(len(pkt)))
	w.Write(hdr)
	_, err := w.Write(pkt)
	return err
}

// ReadFrame reads one frame into buf and returns the packet's length. A frame
// longer than buf is an error: the stream cannot be resynchronised after it.
func ReadFrame(r *bufio.Reader, buf []byte) (int, error) { return readFrame(r, buf, 0) }

// readGSOFrame reads one GSOProtocol frame, the 2-byte length of the
// packet, the virtio-net header, then the packet, into buf (header first)
// and returns the packet's length.
func readGSOFrame(r *bufio.Reader, buf []byte) (int, error) {
	return readFrame(r, buf, packet.VirtioHdrLen)
}

// readFrame reads a frame whose packet follows pre bytes of header.
func readFrame(r *bufio.Reader, buf []byte, pre int) (int, error) {
	// The length byte by byte, with io.ReadFull's errors (EOF before a
	// frame, ErrUnexpectedEOF inside one): an array handed to ReadFull
	// would escape to the heap, an allocation per frame.
	hi, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	lo, err := r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return 0, ErrEmptyFrame
	}
	if pre+n > len(buf) {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, len(buf)-pre)
	}
	if _, err := io.ReadFull(r, buf[:pre+n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return n, nil
}
