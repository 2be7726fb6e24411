package tunnel

import "github.com/libp2p/go-libp2p/core/protocol"

// Segmentation offload carried end to end.
//
// A Linux TUN opened with the virtio-net header and TCP segmentation
// offload hands over TCP "super-packets" of up to 64 KiB made of
// MSS-sized segments, each prefixed by a header that says how to cut it
// (gso_type, gso_size) and where its checksum is still to be completed.
// The inner TCP then works in MSS-sized segments, so it keeps little in
// flight and queues little behind a slow link, while the tunnel still
// moves 64 KiB per read, frame and write. Frames on GSOProtocol carry the
// header and the super-packet whole. A receiving kernel with the same
// offload takes it as one packet. A node whose device has no such header
// (userspace mode, a TUN at a large MTU) speaks GSOProtocol too: its
// engine completes the checksums and hands the device the super-packet as
// one large TCP segment when it fits the device's MTU, as a peer's GRO
// would, and cuts it into segments otherwise (packet.MakeWhole). To a node that predates
// GSOProtocol, and in datagrams, the sender cuts super-packets into
// segments and completes checksums itself.

// GSOProtocol is PacketProtocol with a virtio-net header in each frame,
// between the 2-byte length and the packet: every node takes it, and a
// node offers it when its device reads and writes that header.
const GSOProtocol protocol.ID = "/mynetwork/packets/1.1.0"

// minMSS is the smallest segment size a super-packet travels whole with:
// a peer refuses smaller ones, which would make a forwarding kernel cut a
// super-packet into thousands; the sender segments them itself.
const minMSS = 536
