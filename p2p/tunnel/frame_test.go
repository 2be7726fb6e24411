package tunnel

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	pkts := [][]byte{{0x45, 1}, bytes.Repeat([]byte{7}, 1500), bytes.Repeat([]byte{9}, MaxFrame)}
	for _, p := range pkts {
		if err := WriteFrame(w, p); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if out.Len() != 2*3+2+1500+MaxFrame {
		t.Fatalf("wire size %d", out.Len())
	}
	r := bufio.NewReader(&out)
	buf := make([]byte, MaxFrame)
	for i, p := range pkts {
		n, err := ReadFrame(r, buf)
		if err != nil || !bytes.Equal(buf[:n], p) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := ReadFrame(r, buf); err != io.EOF {
		t.Fatalf("at end: %v, want EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		max  int
		want string
	}{
		{"empty frame", []byte{0, 0}, 100, "empty frame"},
		{"too long for buffer", []byte{0x05, 0xdc, 1, 2}, 100, "frame larger than the packet limit: 1500 bytes, limit 100"},
		{"truncated body", []byte{0, 4, 1, 2}, 100, "unexpected EOF"},
		{"truncated header", []byte{0}, 100, "unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.wire)), make([]byte, tc.max))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	w := bufio.NewWriter(io.Discard)
	if err := WriteFrame(w, nil); err == nil || !strings.Contains(err.Error(), "cannot be framed") {
		t.Errorf("empty write: %v", err)
	}
	if err := WriteFrame(w, make([]byte, MaxFrame+1)); err == nil {
		t.Error("oversize write accepted")
	}
}
