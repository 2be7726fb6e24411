package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/member"
)

// Errors of the admin operations, for the control API's kinds.
var (
	ErrNotAdmin  = errors.New("this node holds no mesh signing key (mesh.signingKey in its config): run invite and revoke on an admin node")
	ErrNoMember  = errors.New("no member")
	ErrNameTaken = errors.New("name taken")
	ErrBadInput  = errors.New("bad input")
)

// Admin says whether the node holds a mesh key: it can invite and revoke.
func (s *Service) Admin() bool { return s.cfg.Signer != nil }

// DefaultTTL is how long an invitation stays open unless told; MaxTTL
// the longest it may.
const (
	DefaultTTL = 24 * time.Hour
	MaxTTL     = 30 * 24 * time.Hour
)

// Invite opens an invitation for a new member to be called name, allowed
// to serve routes, for ttl (0: DefaultTTL), and returns its token.
func (s *Service) Invite(name string, routes []netip.Prefix, ttl time.Duration) (string, time.Time, error) {
	if s.cfg.Signer == nil {
		return "", time.Time{}, ErrNotAdmin
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	switch {
	case !config.ValidName(name):
		return "", time.Time{}, fmt.Errorf("%w: %q is not a valid name: use letters, digits and inner dashes, at most 63", ErrBadInput, name)
	case ttl < 0 || ttl > MaxTTL:
		return "", time.Time{}, fmt.Errorf("%w: ttl %s: want more than 0 and at most %s", ErrBadInput, ttl, MaxTTL)
	case len(routes) > member.MaxRoutes:
		return "", time.Time{}, fmt.Errorf("%w: %d routes, at most %d", ErrBadInput, len(routes), member.MaxRoutes)
	}
	if err := s.nameFree(name, ""); err != nil {
		return "", time.Time{}, err
	}
	now := s.cfg.Now()
	expires := now.Add(ttl).Truncate(time.Second)
	secret, err := s.cfg.Invites.Add(member.Invite{Name: name, Routes: routes, Expires: expires}, now)
	if err != nil {
		return "", time.Time{}, err
	}
	fp, err := member.FingerprintOf(s.cfg.Signer.GetPublic())
	if err != nil {
		return "", time.Time{}, err
	}
	inv := &member.Invitation{Inviter: s.host.ID(), Addrs: s.host.OwnAddrs(16), Secret: secret, Key: fp, Expires: expires}
	return inv.String(), expires, nil
}

// nameFree refuses name if a member other than id, or a listed peer, has it.
func (s *Service) nameFree(name string, id peer.ID) error {
	for _, m := range s.cfg.Store.Members(s.cfg.Now()) {
		if m.Cert.Name == name && m.Cert.PeerID != id {
			return fmt.Errorf("%w: %q is the name of member %s", ErrNameTaken, name, m.Cert.PeerID)
		}
	}
	if err := s.cfg.Listed(name, id); err != nil {
		return fmt.Errorf("%w: %w", ErrNameTaken, err)
	}
	return nil
}

// Revoke withdraws the certificates of the member named who (a name or
// a peer ID): the one it holds and every earlier one. The revocation
// spreads as certificates do. It returns the member's ID and name.
func (s *Service) Revoke(who string) (peer.ID, string, error) {
	if s.cfg.Signer == nil {
		return "", "", ErrNotAdmin
	}
	var found *member.Certificate
	certs, _ := s.cfg.Store.Records()
	for _, m := range certs {
		if m.Cert.Name == who || m.Cert.PeerID.String() == who {
			found = m.Cert
			break // newest first: a name reused after an expiry names the latest
		}
	}
	if found == nil {
		return "", "", fmt.Errorf("%w is named or has the ID %q", ErrNoMember, who)
	}
	if found.PeerID == s.host.ID() {
		return "", "", fmt.Errorf("%w: %q is this node: revoke it from another admin node", ErrBadInput, who)
	}
	now := s.cfg.Now()
	// Before is the certificate's own start, a second on: every
	// certificate of the peer issued until this one, by the signers'
	// clocks, never by a member's.
	r := &member.Revocation{PeerID: found.PeerID, Serial: found.Serial, Before: found.NotBefore.Add(time.Second), Issued: now}
	if err := r.Sign(s.cfg.Signer); err != nil {
		return "", "", err
	}
	raw, err := r.Marshal()
	if err != nil {
		return "", "", err
	}
	if _, err := s.cfg.Store.AddRevocation(raw); err != nil {
		return "", "", err
	}
	s.cfg.Log.Info("member revoked", "name", found.Name, "peer", found.PeerID)
	s.changed("", nil, [][]byte{raw}, true)
	return found.PeerID, found.Name, nil
}

// The join protocol, version 1 (docs/DESIGN.md): the joiner sends 1 and
// the 32-byte secret; the inviter answers 0, its mesh public key (2-byte
// length) and records (the joiner's certificate first, then every member
// and revocation it knows), or 1 and a reason (2-byte length, UTF-8).
const (
	joinVersion  = 1
	joinAccepted = 0
	joinRefused  = 1
	maxReason    = 1024
	maxKeyLen    = 256
)

// handleJoin admits a node that shows an open invitation's secret: it
// signs the node's certificate, under the invitation's name, for the
// peer ID the connection proved.
func (s *Service) handleJoin(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	joiner := st.Conn().RemotePeer()
	var req [1 + 32]byte
	if _, err := io.ReadFull(st, req[:]); err != nil || req[0] != joinVersion {
		s.Malformed.Add(1)
		st.Reset()
		return
	}
	raw, err := s.admit(joiner, [32]byte(req[1:]))
	if err != nil {
		s.JoinsRefused.Add(1)
		if s.refusalLog.Allow() { // anyone may try: the log must not fill
			s.cfg.Log.Info("join refused", "peer", joiner, "err", err, "refused so far", s.JoinsRefused.Load())
		}
		writeRefusal(st, err.Error())
		return
	}
	pub, err := crypto.MarshalPublicKey(s.cfg.Signer.GetPublic())
	if err != nil {
		writeRefusal(st, "the inviter cannot encode its mesh key")
		return
	}
	out := append([]byte{joinAccepted}, binary.BigEndian.AppendUint16(nil, uint16(len(pub)))...)
	out = append(out, pub...)
	if _, err := st.Write(out); err != nil {
		return
	}
	certs, revs := s.cfg.Store.Records()
	mine, _ := s.cfg.Store.Member(joiner)
	mine.Raw = raw
	member.WriteRecords(st, append([]member.Member{mine}, s.withHints(certs)...), revs)
}

// admit takes the invitation and signs the joiner's certificate. An
// invitation that cannot be used for this joiner (its address is taken)
// stays open.
func (s *Service) admit(joiner peer.ID, secret [32]byte) ([]byte, error) {
	now := s.cfg.Now()
	inv, err := s.cfg.Invites.Take(secret, now)
	if err != nil {
		return nil, err
	}
	if err := s.admissible(joiner, inv.Name); err != nil {
		s.cfg.Invites.Put(secret)
		return nil, err
	}
	c, raw, err := member.Issue(s.cfg.Signer, joiner, inv.Name, inv.Routes, now, member.DefaultValidity)
	if err != nil {
		s.cfg.Invites.Put(secret)
		return nil, err
	}
	if _, err := s.cfg.Store.AddCertificate(raw, nil, now); err != nil {
		s.cfg.Invites.Put(secret)
		return nil, err
	}
	s.cfg.Log.Info("member joined", "name", c.Name, "peer", joiner, "ipv4", c.IPv4)
	s.changed(joiner, []member.Member{{Cert: c, Raw: raw}}, nil, true)
	return raw, nil
}

// admissible checks that the joiner's name is free and that no member
// or listed peer derives its mesh address: the signer is where
// collisions are caught.
func (s *Service) admissible(joiner peer.ID, name string) error {
	if err := s.nameFree(name, joiner); err != nil {
		return err
	}
	v4 := config.AddressesOf(joiner).IPv4
	for _, m := range s.cfg.Store.Members(s.cfg.Now()) {
		if m.Cert.IPv4 == v4 && m.Cert.PeerID != joiner {
			return fmt.Errorf("the new node's peer ID derives %s, the address of member %s (%s): run 'mynetwork init --force' there for a new identity, then join again with the same token", v4, m.Cert.Name, m.Cert.PeerID)
		}
	}
	return nil
}

func writeRefusal(w io.Writer, reason string) {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	out := append([]byte{joinRefused}, binary.BigEndian.AppendUint16(nil, uint16(len(reason)))...)
	w.Write(append(out, reason...))
}

// RenewWithin is how close to its end a certificate is renewed.
const RenewWithin = 30 * 24 * time.Hour

// Renew signs a new certificate, the same but for its window, for every
// member whose certificate ends within RenewWithin and that is connected
// now (or is this node): a member that is gone is left to expire. The
// new certificates spread as any do. It reports how many it renewed.
func (s *Service) Renew(now time.Time) int {
	if s.cfg.Signer == nil || !s.started.Load() {
		return 0
	}
	connected := map[peer.ID]bool{s.host.ID(): true}
	for _, p := range s.host.ConnectedPeers() {
		connected[p] = true
	}
	var renewed []member.Member
	for _, m := range s.cfg.Store.Members(now) {
		c := m.Cert
		if !connected[c.PeerID] || c.NotAfter.Sub(now) > RenewWithin {
			continue
		}
		nc, raw, err := member.Issue(s.cfg.Signer, c.PeerID, c.Name, c.Routes, now, member.DefaultValidity)
		added := false
		if err == nil {
			added, err = s.cfg.Store.AddCertificate(raw, nil, now)
		}
		if err != nil || !added { // not added: issued this second, as the one held
			if err != nil {
				s.cfg.Log.Warn("membership: renew certificate", "name", c.Name, "peer", c.PeerID, "err", err)
			}
			continue
		}
		s.cfg.Log.Info("member certificate renewed", "name", c.Name, "peer", c.PeerID, "until", nc.NotAfter)
		renewed = append(renewed, member.Member{Cert: nc, Raw: raw})
	}
	if len(renewed) > 0 {
		s.changed("", renewed, nil, false)
	}
	return len(renewed)
}
