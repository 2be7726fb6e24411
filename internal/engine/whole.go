package engine

import "github.com/mynetwork/mynetwork/internal/packet"

// deviceWriter writes received packets to the device. Packets come from
// the transport with their offload header in front; a device that takes
// such headers gets them as they are, any other gets each packet made
// whole (packet.MakeWhole): its checksums completed, and a TCP
// super-packet larger than the device's MTU cut into segments, written in
// order with the packets around it. Only this writer does that work, so
// no device or transport repeats it.
type deviceWriter struct {
	dev     packet.Device
	offload bool
	mtu     int
	size    int      // of each segment buffer
	batch   int      // segment buffers to write at once
	segBufs [][]byte // made at the first super-packet to cut
	segs    [][]byte // segments to write: segBufs cut to length
	scratch []byte
}

func newDeviceWriter(dev packet.Device, batch, size int) *deviceWriter {
	mtu, err := dev.MTU()
	if err != nil || mtu <= 0 {
		mtu = 1500
	}
	return &deviceWriter{dev: dev, offload: packet.Offloads(dev), mtu: mtu, size: size, batch: batch}
}

// write writes the packets at out[i][packet.Headroom:], whose headers
// passed packet.Check, and says how many packets the device took: more
// than len(out) when super-packets were cut.
func (w *deviceWriter) write(out [][]byte) (int, error) {
	if w.offload {
		_, err := w.dev.Write(out, packet.Headroom)
		return len(out), err
	}
	whole := out[:0] // filled behind the loop's reading position
	sent := 0
	for _, b := range out {
		if packet.Plain(packet.HeaderOf(b)) {
			whole = append(whole, b)
			continue
		}
		pkt := b[packet.Headroom:]
		h := packet.ParseVirtio(packet.HeaderOf(b))
		if !h.Super() || len(pkt) <= w.mtu {
			packet.Finish(h, pkt)
			whole = append(whole, b)
			continue
		}
		if len(whole) > 0 {
			if _, err := w.dev.Write(whole, packet.Headroom); err != nil {
				return sent, err
			}
			sent += len(whole)
			whole = out[:0]
		}
		n, err := w.cut(h, pkt)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	if len(whole) > 0 {
		if _, err := w.dev.Write(whole, packet.Headroom); err != nil {
			return sent, err
		}
		sent += len(whole)
	}
	return sent, nil
}

// cut writes a super-packet to the device as its segments, a batch at a
// time.
func (w *deviceWriter) cut(h packet.VirtioHeader, pkt []byte) (int, error) {
	if w.segBufs == nil {
		w.segBufs = makeBufs(w.batch, w.size)
		w.segs = make([][]byte, 0, w.batch)
		w.scratch = make([]byte, w.size)
	}
	sent := 0
	flush := func() error {
		_, err := w.dev.Write(w.segs, packet.Headroom)
		if err == nil {
			sent += len(w.segs)
		}
		w.segs = w.segs[:0]
		return err
	}
	err := packet.Segment(pkt, h, w.scratch, func(seg []byte) error {
		b := w.segBufs[len(w.segs)]
		n := copy(b[packet.Headroom:], seg)
		w.segs = append(w.segs, b[:packet.Headroom+n])
		if len(w.segs) == w.batch {
			return flush()
		}
		return nil
	})
	if err == nil && len(w.segs) > 0 {
		err = flush()
	}
	w.segs = w.segs[:0]
	return sent, err
}
