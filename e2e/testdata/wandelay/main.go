// Command wandelay is the e2e tests' WAN: a bridge between two interfaces
// that holds every frame for a fixed one-way delay before passing it on,
// for kernels without the netem qdisc. It reads and writes raw frames on
// AF_PACKET sockets with their virtio-net header, so that the veth's
// offloads (partial checksums, TCP super-packets) pass through unchanged.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// frame is one frame with the time it may leave.
type frame struct {
	due  time.Time
	data []byte
}

func main() {
	a := flag.String("a", "", "one interface")
	b := flag.String("b", "", "the other interface")
	delay := flag.Duration("delay", 20*time.Millisecond, "one-way delay")
	flag.Parse()
	fa, err := open(*a)
	if err == nil {
		var fb int
		if fb, err = open(*b); err == nil {
			fmt.Printf("bridging %s and %s with %s each way\n", *a, *b, *delay)
			go forward(fa, fb, *delay)
			forward(fb, fa, *delay)
		}
	}
	fmt.Fprintln(os.Stderr, "wandelay:", err)
	os.Exit(1)
}

// open returns a raw socket that sees every frame arriving on the
// interface, with its virtio-net header.
func open(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return -1, err
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	if err != nil {
		return -1, fmt.Errorf("socket on %s: %w", name, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return -1, fmt.Errorf("vnet header on %s: %w", name, err)
	}
	// Our own writes to this interface must not come back to be forwarded.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return -1, fmt.Errorf("ignore outgoing on %s: %w", name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return -1, fmt.Errorf("bind %s: %w", name, err)
	}
	return fd, nil
}

// forward moves frames from one socket to the other, each delay after it
// arrived. The delay is the same for all, so arrival order is due order.
func forward(from, to int, delay time.Duration) {
	q := make(chan frame, 8192)
	go func() {
		for f := range q {
			time.Sleep(time.Until(f.due))
			unix.Write(to, f.data) // a frame the interface refuses is lost, as on a wire
		}
	}()
	buf := make([]byte, 256<<10)
	for {
		n, err := unix.Read(from, buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wandelay: read:", err)
			os.Exit(1)
		}
		select {
		case q <- frame{due: time.Now().Add(delay), data: append([]byte(nil), buf[:n]...)}:
		default: // a full queue drops, like a router's
		}
	}
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
