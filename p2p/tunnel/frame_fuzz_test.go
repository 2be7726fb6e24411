package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to ReadFrame, reading frame after
// frame into a buffer of a fuzzed size, and checks every result against
// frameOracle: ReadFrame never panics, never reports more than len(buf)
// bytes, returns exactly the length header's bytes on success, fails with
// the documented error otherwise, and consumes exactly what the oracle
// says. It then checks that WriteFrame → ReadFrame round-trips the input
// and a payload of bufLen bytes (1..MaxFrame) made from it.
func FuzzReadFrame(f *testing.F) {
	frame := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	hdr := func(n int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(n)) }
	seeds := []struct {
		name   string
		stream []byte
		bufLen uint16
	}{
		{"empty stream", nil, 1500},
		{"one header byte", []byte{0}, 1500},
		{"empty frame", hdr(0), 1500},
		{"one byte frame", frame(hdr(1), []byte{0x45}), 1500},
		{"two frames", frame(hdr(2), []byte{0x45, 0}, hdr(3), []byte{0x60, 0, 0}), 1500},
		{"short body", frame(hdr(20), []byte{0x45, 0, 0}), 1500},
		{"frame fills the buffer", frame(hdr(4), []byte{1, 2, 3, 4}), 4},
		{"frame one over the buffer", frame(hdr(5), []byte{1, 2, 3, 4, 5}), 4},
		{"largest header, no body", hdr(MaxFrame), MaxFrame},
		{"zero-length buffer", frame(hdr(1), []byte{1}), 0},
		{"empty frame then a frame", frame(hdr(0), hdr(1), []byte{9}), 1500},
	}
	for _, s := range seeds {
		f.Add(s.stream, s.bufLen)
	}
	var fc frameChecker
	f.Fuzz(func(t *testing.T, stream []byte, bufLen uint16) {
		if len(stream) > maxStream {
			t.Skip("long streams add nothing but minimisation time; see maxStream")
		}
		fc.readFrames(t, stream, int(bufLen))
		if len(stream) == 0 {
			if err := WriteFrame(bufio.NewWriter(io.Discard), stream); err == nil {
				t.Error("WriteFrame accepted an empty packet")
			}
			return
		}
		fc.roundTrip(t, stream)
		if bufLen > 0 {
			payload := fc.payload[:bufLen]
			copy(payload, stream) // the rest keeps an earlier input's bytes
			fc.roundTrip(t, payload)
		}
	})
}

// frameChecker holds buffers that FuzzReadFrame reuses from one input to
// the next, so that an input costs microseconds even with 64 KiB frames.
// Inputs run one at a time in a process, so one checker serves them all.
//
// It has no loop whose count the input sets but the bounded one over
// frames (maxFrames): the fuzzer counts loop iterations as coverage, and
// every new count would make a longer input "interesting", to be
// minimised at length (see maxStream) instead of fuzzing.
type frameChecker struct {
	buf     [MaxFrame]byte
	payload [MaxFrame]byte
	wire    bytes.Buffer
	w       *bufio.Writer
	r       *bufio.Reader
	src     bytes.Reader
}

// maxFrames is how many frames of one input readFrames reads at most.
const maxFrames = 3

// maxStream bounds the fuzzed stream. ReadFrame's logic does not depend on
// a frame's size beyond its comparison with len(buf) (and bufLen covers
// 0..MaxFrame), while the fuzzer's minimisation of an interesting input
// is quadratic in its length: at a few thousand runs a second a 3 KiB
// input took the whole run. Frames of MaxFrame bytes are read whole in
// the round trip of the bufLen-byte payload.
const maxStream = 64

// frameOracle is an independent reading of the frame format: for stream,
// it returns the packet length of the first frame (0 on error), the
// error ReadFrame must return (compared with errors.Is; ErrFrameTooLarge for
// a frame longer than bufLen), and how many bytes ReadFrame consumes.
func frameOracle(stream []byte, bufLen int) (n int, want error, consumed int) {
	switch {
	case len(stream) == 0:
		return 0, io.EOF, 0
	case len(stream) == 1:
		return 0, io.ErrUnexpectedEOF, 1
	}
	size := int(stream[0])<<8 | int(stream[1])
	switch {
	case size == 0:
		return 0, ErrEmptyFrame, 2
	case size > bufLen:
		return 0, ErrFrameTooLarge, 2
	case len(stream) < 2+size:
		return 0, io.ErrUnexpectedEOF, len(stream)
	}
	return size, nil, 2 + size
}

// reader returns the checker's bufio.Reader reset to read from src.
func (fc *frameChecker) reader(src io.Reader) *bufio.Reader {
	if fc.r == nil {
		fc.r = bufio.NewReader(src)
	} else {
		fc.r.Reset(src)
	}
	return fc.r
}

// readFrames reads stream frame by frame with a buffer of bufLen
// bytes until the first error, or maxFrames frames, and checks each
// result with frameOracle. The bytes left in the reader must then be
// exactly those the oracle did not consume.
func (fc *frameChecker) readFrames(t *testing.T, stream []byte, bufLen int) {
	t.Helper()
	fc.src.Reset(stream)
	r := fc.reader(&fc.src)
	buf := fc.buf[:bufLen]
	rest := stream
	for range maxFrames {
		wantN, wantErr, consumed := frameOracle(rest, bufLen)
		n, err := ReadFrame(r, buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("ReadFrame returned n=%d with a %d-byte buffer", n, len(buf))
		}
		switch {
		case wantErr == nil && err != nil:
			t.Fatalf("ReadFrame(% x) = %v, want a %d-byte frame", rest, err, wantN)
		case wantErr != nil && (!errors.Is(err, wantErr) || n != 0):
			t.Fatalf("ReadFrame(% x) = %d, %v; want %v", rest, n, err, wantErr)
		}
		if err == nil {
			if n != wantN {
				t.Fatalf("ReadFrame returned %d bytes, the header says %d", n, wantN)
			}
			if !bytes.Equal(buf[:n], rest[2:2+n]) {
				t.Fatalf("ReadFrame packet % x, want % x", buf[:n], rest[2:2+n])
			}
		}
		rest = rest[consumed:]
		if err != nil {
			break
		}
	}
	// Reading is sequential: counting the bytes left is enough (and, unlike
	// reading them, loops over nothing).
	if left := r.Buffered() + fc.src.Len(); left != len(rest) {
		t.Fatalf("%d bytes are left unread, want %d", left, len(rest))
	}
}

// roundTrip writes pkt as two frames and reads both back with a
// MaxFrame buffer, then expects io.EOF: any 1..MaxFrame payload survives.
func (fc *frameChecker) roundTrip(t *testing.T, pkt []byte) {
	t.Helper()
	fc.wire.Reset()
	if fc.w == nil {
		fc.w = bufio.NewWriter(&fc.wire)
	}
	w := fc.w
	err := errors.Join(WriteFrame(w, pkt), WriteFrame(w, pkt), w.Flush())
	if len(pkt) > MaxFrame {
		if err == nil {
			t.Fatalf("WriteFrame accepted a %d-byte packet", len(pkt))
		}
		return
	}
	if err != nil {
		t.Fatalf("WriteFrame(%d bytes): %v", len(pkt), err)
	}
	if fc.wire.Len() != 2*(2+len(pkt)) {
		t.Fatalf("two %d-byte frames take %d bytes on the wire", len(pkt), fc.wire.Len())
	}
	r := fc.reader(&fc.wire)
	buf := fc.buf[:]
	for i := range 2 {
		n, err := ReadFrame(r, buf)
		if err != nil || !bytes.Equal(buf[:n], pkt) {
			t.Fatalf("frame %d of a %d-byte packet: read %d bytes, %v", i, len(pkt), n, err)
		}
	}
	if _, err := ReadFrame(r, buf); err != io.EOF {
		t.Fatalf("after the frames: %v, want io.EOF", err)
	}
}
