package membership

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mynetwork/mynetwork/internal/member"
)

// Joined is what a join brings home: the mesh key to trust, this node's
// certificate, and a store with the members and revocations the inviter
// knew (their certificates verified).
type Joined struct {
	Key   crypto.PubKey
	Cert  *member.Certificate
	Raw   []byte
	Store *member.Store
}

// ErrRefused wraps the inviter's reason for refusing a join.
var ErrRefused = errors.New("the inviter refused the invitation")

// Join uses an invitation: as the node of key, with a host of its own
// that listens nowhere and talks to nobody else, it connects to the
// inviter at the token's addresses, shows the secret and takes what the
// inviter answers, checked against the mesh key the token names. store
// is where the member records go (its file is not written).
func Join(ctx context.Context, key crypto.PrivKey, inv *member.Invitation, storePath string) (*Joined, error) {
	h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs, libp2p.DisableRelay(),
		// Its own registry: libp2p's metrics never land in the process's
		// default one (libp2p.DisableMetrics still left the default resource
		// manager's and identify's there).
		libp2p.PrometheusRegisterer(prometheus.NewRegistry()))
	if err != nil {
		return nil, fmt.Errorf("join: start libp2p: %w", err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: inv.Inviter, Addrs: inv.Addrs}); err != nil {
		return nil, fmt.Errorf("join: cannot reach the inviter %s at %v: %w", inv.Inviter, inv.Addrs, err)
	}
	st, err := h.NewStream(ctx, inv.Inviter, JoinProtocol)
	if err != nil {
		return nil, fmt.Errorf("join: the inviter %s does not take joins (is it an admin node, up?): %w", inv.Inviter, err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	if _, err := st.Write(append([]byte{joinVersion}, inv.Secret[:]...)); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return readJoined(bufio.NewReader(st), inv, self, storePath)
}

// readJoined reads the inviter's answer.
func readJoined(r io.Reader, inv *member.Invitation, self peer.ID, storePath string) (*Joined, error) {
	var status [1]byte
	if _, err := io.ReadFull(r, status[:]); err != nil {
		return nil, fmt.Errorf("join: no answer from the inviter: %w", err)
	}
	body, err := readShort(r, max(maxReason, maxKeyLen))
	if err != nil {
		return nil, fmt.Errorf("join: the inviter's answer: %w", err)
	}
	if status[0] != joinAccepted {
		return nil, fmt.Errorf("%w: %s", ErrRefused, body)
	}
	pub, err := crypto.UnmarshalPublicKey(body)
	if err != nil {
		return nil, fmt.Errorf("join: the inviter's mesh key: %w", err)
	}
	if fp, err := member.FingerprintOf(pub); err != nil || fp != inv.Key {
		return nil, fmt.Errorf("join: the inviter's mesh key %s is not %s, the one the token names", fp, inv.Key)
	}
	trust, err := member.NewTrust(pub)
	if err != nil {
		return nil, err
	}
	j := &Joined{Key: pub, Store: member.NewStore(trust, storePath)}
	// This node's certificate, then up to a full store's records (this
	// node's certificate among them again).
	for i := 0; ; i++ {
		rec, err := member.ReadRecord(r)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("join: the inviter's records: %w", err)
		}
		if i > maxRecords {
			return nil, fmt.Errorf("join: the inviter sent more than %d records", 1+maxRecords)
		}
		if i == 0 {
			if j.Cert, err = ownCertificate(trust, rec.Certificate, self); err != nil {
				return nil, err
			}
			j.Raw = rec.Certificate
			continue
		}
		if rec.Revocation != nil {
			j.Store.AddRevocation(rec.Revocation)
		} else if c, err := member.ParseCertificate(rec.Certificate); err == nil && c.PeerID != self {
			j.Store.AddCertificate(rec.Certificate, rec.Addrs, time.Now()) // what does not verify is left out
		}
	}
	if j.Cert == nil {
		return nil, errors.New("join: the inviter sent no certificate")
	}
	return j, nil
}

// ownCertificate checks that raw is a valid certificate of self.
func ownCertificate(trust *member.Trust, raw []byte, self peer.ID) (*member.Certificate, error) {
	c, err := member.ParseCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("join: the inviter's certificate for this node: %w", err)
	}
	if c.PeerID != self {
		return nil, fmt.Errorf("join: the inviter sent a certificate of %s, not of this node %s", c.PeerID, self)
	}
	if err := trust.Verify(c, time.Now()); err != nil {
		return nil, fmt.Errorf("join: the inviter's certificate for this node: %w (is this machine's clock right?)", err)
	}
	return c, nil
}

func readShort(r io.Reader, max int) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n > max {
		return nil, fmt.Errorf("%d bytes, at most %d", n, max)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}
