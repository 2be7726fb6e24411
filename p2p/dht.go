package p2p

import (
	"context"

	ds "github.com/ipfs/go-datastore"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newDHT starts the dual (LAN and WAN) DHT that finds peers by ID. The LAN
// table accepts private addresses, so a mesh whose bootstrap node sits on
// a home or lab network works too.
//
// The node needs the DHT for FindPeer only, yet in server mode kad-dht
// keeps every provider and value record anyone sends, for 48 h, in memory
// by default: 100k ADD_PROVIDER records from one stranger grew a node by
// ~80 MiB. This node refuses them (refuseRecords), and its datastore keeps
// nothing it is given, which would bound what got past the refusal to the
// provider store's write buffer (256 records).
//
// kad-dht does not allow its DisableProviders and DisableValues options
// under the default protocol prefix, and a prefix of our own (a
// mesh-private DHT) would cut nodes off the public DHT, the default
// bootstrap, and off nodes of earlier versions.
func newDHT(h host.Host, mode dht.ModeOpt, bootstrap []peer.AddrInfo) (*dual.DHT, error) {
	return dual.New(h, dual.DHTOption(
		dht.Mode(mode),
		dht.BootstrapPeers(bootstrap...),
		dht.Datastore(ds.NewNullDatastore()),
		dht.OnRequestHook(refuseRecords),
	))
}

// refuseRecords empties the records of an incoming ADD_PROVIDER or
// PUT_VALUE request before kad-dht handles it: the handler then answers
// with an error (no valid provider, nil record) and resets the stream, so
// the sender knows that nothing was stored and nothing was: no record,
// and no provider addresses in the peerstore (kept 24 h otherwise).
// Lookups (FIND_NODE, GET_PROVIDERS, GET_VALUE) are answered as before,
// with the closest peers this node knows.
func refuseRecords(_ context.Context, _ network.Stream, req *pb.Message) {
	switch req.GetType() {
	case pb.Message_ADD_PROVIDER:
		req.ProviderPeers = nil
	case pb.Message_PUT_VALUE:
		req.Record = nil
	}
}
