// Command wgref runs wireguard-go, the userspace WireGuard, between two hosts
// for the namespace benchmark: the reference a userspace VPN is measured
// against on the same harness. Keys come from names (a benchmark, not a
// secret), so the two ends need no exchange.
//
//	wgref -i wgr0 -self a -peer b -endpoint 10.124.0.2:51820
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

func main() {
	name := flag.String("i", "wgr0", "TUN interface to create")
	self := flag.String("self", "", "this end's key name")
	peer := flag.String("peer", "", "the other end's key name")
	port := flag.Int("port", 51820, "UDP port to listen on")
	endpoint := flag.String("endpoint", "", "the other end's host:port (empty: learn it from the first packet)")
	allowed := flag.String("allowed", "0.0.0.0/0", "addresses routed to the other end")
	mtu := flag.Int("mtu", 1420, "interface MTU")
	flag.Parse()
	if *self == "" || *peer == "" {
		fmt.Fprintln(os.Stderr, "wgref: -self and -peer are required")
		os.Exit(2)
	}
	if err := run(*name, *self, *peer, *port, *endpoint, *allowed, *mtu); err != nil {
		fmt.Fprintln(os.Stderr, "wgref:", err)
		os.Exit(1)
	}
}

// keys derives a Curve25519 key pair from a name.
func keys(name string) (private, public []byte, err error) {
	sum := sha256.Sum256([]byte("wgref " + name))
	sum[0] &= 248
	sum[31] = sum[31]&127 | 64
	public, err = curve25519.X25519(sum[:], curve25519.Basepoint)
	return sum[:], public, err
}

func run(name, self, peer string, port int, endpoint, allowed string, mtu int) error {
	priv, _, err := keys(self)
	if err != nil {
		return err
	}
	_, peerPub, err := keys(peer)
	if err != nil {
		return err
	}
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return fmt.Errorf("create TUN %s: %w", name, err)
	}
	wg := device.NewDevice(dev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "wgref: "))
	defer wg.Close()
	cfg := fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\nallowed_ip=%s\n",
		hex.EncodeToString(priv), port, hex.EncodeToString(peerPub), allowed)
	if endpoint != "" {
		cfg += "endpoint=" + endpoint + "\n"
	}
	if err := wg.IpcSet(cfg); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	if err := wg.Up(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-wg.Wait():
	}
	return nil
}
