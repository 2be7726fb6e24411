package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// dhtRecords is how many provider records the stranger in
// TestDHTKeepsNoRecords sends to each of the two tables (value records: a
// quarter of that).
const dhtRecords = 400

// TestDHTKeepsNoRecords: a stranger sends a DHT server node provider and
// value records, through kad-dht's own client with the node as its only
// peer, in both tables of the dual DHT; the node keeps none, and still
// answers FindPeer.
func TestDHTKeepsNoRecords(t *testing.T) {
	k, _ := p2ptest.NewKey(t)
	server := newNode(t, Options{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Reachability: "public", MaxPacket: 1500})
	start(t, server)
	serverInfo := peer.AddrInfo{ID: server.host.ID(), Addrs: server.host.Addrs()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A peer the stranger looks for, known to the node by its connection.
	target := newHost(t, "/ip4/127.0.0.1/tcp/0")
	if err := target.Connect(ctx, serverInfo); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		ext   protocol.ID
		table *dht.IpfsDHT
	}{
		{"wan", "", server.kad.WAN},
		{"lan", dual.LanExtension, server.kad.LAN},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, "/ip4/127.0.0.1/tcp/0")
			opts := []dht.Option{dht.Mode(dht.ModeClient), dht.BootstrapPeers(serverInfo)}
			if c.ext != "" {
				opts = append(opts, dht.ProtocolExtension(c.ext))
			}
			client, err := dht.New(h, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if err := h.Connect(ctx, serverInfo); err != nil {
				t.Fatal(err)
			}
			p2ptest.Eventually(t, "the node in the stranger's table", func() bool { return client.RoutingTable().Size() > 0 })

			keys := make([]cid.Cid, dhtRecords)
			for i := range keys {
				sum, _ := mh.Sum([]byte(rand.Text()), mh.SHA2_256, -1)
				keys[i] = cid.NewCidV1(cid.Raw, sum)
			}
			values := make(map[string][]byte, dhtRecords/4)
			for range dhtRecords / 4 {
				_, pub, _ := crypto.GenerateEd25519Key(nil)
				id, _ := peer.IDFromPublicKey(pub)
				values["/pk/"+string(id)], _ = crypto.MarshalPublicKey(pub)
			}
			var wg sync.WaitGroup
			work := make(chan func() error)
			for range 8 {
				wg.Go(func() {
					for f := range work {
						if err := f(); err != nil {
							t.Error(err)
						}
					}
				})
			}
			for _, key := range keys {
				work <- func() error { return client.Provide(ctx, key, true) }
			}
			for key, v := range values {
				work <- func() error { return client.PutValue(ctx, key, v) }
			}
			close(work)
			wg.Wait()

			kept := 0
			for _, key := range keys {
				if provs, err := c.table.ProviderStore().GetProviders(ctx, key.Hash()); err != nil {
					t.Fatal(err)
				} else if len(provs) > 0 {
					kept++
				}
			}
			for key := range values {
				vctx, vcancel := context.WithTimeout(ctx, time.Second)
				if _, err := c.table.GetValue(vctx, key); err == nil {
					kept++
				} else if errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				vcancel()
			}
			if kept > 0 {
				t.Errorf("the node kept %d of the %d records a stranger sent", kept, len(keys)+len(values))
			}

			ai, err := client.FindPeer(ctx, target.ID())
			if err != nil || len(ai.Addrs) == 0 {
				t.Fatalf("FindPeer through the node: %v, %v", ai, err)
			}
		})
	}
}
