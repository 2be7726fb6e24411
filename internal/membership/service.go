// Package membership runs a node's part in a mesh that grows by
// invitation: it passes the member certificates and revocations it knows
// to the peers it connects to, takes theirs, and on an admin node issues
// invitations, admits the nodes that show one, and revokes members. What
// certificates are, and how they verify, is package member's.
package membership

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/internal/member"
	"github.com/mynetwork/mynetwork/internal/ratelimit"
)

// The protocols (docs/DESIGN.md): records pass certificates and
// revocations on, one way per stream; digest asks whether a peer holds
// the same records before passing them all on; join admits a node that
// holds an invitation.
const (
	RecordsProtocol protocol.ID = "/mynetwork/members/1.0.0"
	DigestProtocol  protocol.ID = "/mynetwork/members-digest/1.0.0"
	JoinProtocol    protocol.ID = "/mynetwork/join/1.0.0"
)

const (
	streamTimeout = 30 * time.Second
	// strangerRecords is what a peer that is neither listed nor a member
	// may send on one stream: its own certificate, which is how a new
	// member introduces itself, and little more.
	strangerRecords = 4
	// maxRecords bounds one stream from a known peer: everything a full
	// store holds.
	maxRecords = member.MaxMembers + member.MaxRevocations
	queueLen   = 64
)

// Host is what the service needs of the node (p2p.Node has it).
type Host interface {
	ID() peer.ID
	OwnAddrs(max int) []ma.Multiaddr
	PeerAddrs(p peer.ID, max int) []ma.Multiaddr
	ConnectedPeers() []peer.ID
	Handle(protocol.ID, network.StreamHandler)
	NewStream(ctx context.Context, p peer.ID, proto protocol.ID) (network.Stream, error)
	// AddHints takes addresses another node passed on for p.
	AddHints(p peer.ID, addrs []ma.Multiaddr)
	// Reach connects to p, a peer the node knows, if it has no connection
	// to it (on a node that connects on demand, as packets for p would),
	// waits a few seconds at most, and reports whether it is connected.
	Reach(ctx context.Context, p peer.ID) bool
}

// Config is a service's store and, on an admin node, its signing key and
// invitations.
type Config struct {
	Store *member.Store
	// Signer and Invites are set on an admin node only.
	Signer  crypto.PrivKey
	Invites *member.Invites
	// Known says whether a peer is listed in the config or a member: it
	// may send every record it has, and gets this node's.
	Known func(peer.ID) bool
	// Listed refuses a certificate's name when a peer listed in the
	// config (with another ID) has it, or its ID when it derives the mesh
	// address of a listed peer or this node. A listed peer's own
	// certificate passes: the config's entry wins over it.
	Listed func(name string, id peer.ID) error
	// Changed is called, never concurrently, when the members changed.
	Changed func()
	// SyncEvery, on a node that connects on demand, is how often it
	// connects to a member it has no connection to (at start, then every
	// SyncEvery ±25%), which passes each the other's records: news that
	// came while it was away reaches it even if it talks to no one else.
	// 0: never (a node connected to every peer has no need).
	SyncEvery time.Duration
	// SkipInStep: on a new connection, pass the records to a peer only
	// when its digest differs (see Connected). Set on a node with a DHT,
	// which finds members by ID: without one, the address hints that
	// every connection passes on are how members learn where the others
	// are.
	SkipInStep bool
	Log        *slog.Logger
	Now        func() time.Time // nil: time.Now
}

// Service is a node's membership protocols. Create it with New, then
// Start it on the node.
type Service struct {
	cfg     Config
	host    Host
	started atomic.Bool // host is set
	queue   chan push
	// changeMu makes Changed calls one at a time, in order.
	changeMu sync.Mutex
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// Malformed counts record and digest streams reset for bad bytes,
	// Refused the records that did not verify, JoinsRefused the joins
	// refused.
	Malformed, Refused, JoinsRefused atomic.Uint64
	refusalLog                       ratelimit.Every
}

// push is records to send: to one peer, or to every connected known peer
// but except, and with reach to every member too, connecting to those it
// has no connection to.
type push struct {
	to, except peer.ID
	certs      []member.Member
	revs       [][]byte
	reach      bool
	ifDiffer   bool // to: only if its digest is not this node's (Connected)
}

// New makes a service; it does nothing until Start.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, queue: make(chan push, queueLen), refusalLog: ratelimit.Every{Interval: 10 * time.Second}}
}

// Store is the service's store.
func (s *Service) Store() *member.Store { return s.cfg.Store }

// Start serves the protocols on host and starts the sender.
func (s *Service) Start(ctx context.Context, host Host) {
	s.host = host
	ctx, s.cancel = context.WithCancel(ctx)
	host.Handle(RecordsProtocol, s.handleRecords)
	host.Handle(DigestProtocol, s.handleDigest)
	if s.cfg.Signer != nil {
		host.Handle(JoinProtocol, s.handleJoin)
	}
	s.wg.Add(1)
	go s.send(ctx)
	if s.cfg.SyncEvery > 0 {
		s.wg.Add(1)
		go s.syncLoop(ctx)
	}
	s.started.Store(true)
}

// Close stops the sender.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Connected passes everything this node knows to p, a peer it has just
// connected to, if p is known; with SkipInStep, only if p does not hold
// the same records already (the digest protocol; a peer that does not
// speak it gets them all). It never blocks.
func (s *Service) Connected(p peer.ID) {
	if !s.started.Load() || !s.cfg.Known(p) {
		return
	}
	if s.cfg.SkipInStep {
		s.enqueue(push{to: p, ifDiffer: true})
		return
	}
	certs, revs := s.cfg.Store.Records()
	s.enqueue(push{to: p, certs: certs, revs: revs})
}

func (s *Service) enqueue(p push) {
	select {
	case s.queue <- p:
	default:
		s.cfg.Log.Debug("membership: send queue full; records not passed on", "to", p.to)
	}
}

// changed saves the store and tells the daemon, then passes the new
// records to every connected known peer but the one they came from, and
// with reach (news this node made: a revocation, a member it admitted)
// to every member, connected or not.
func (s *Service) changed(from peer.ID, certs []member.Member, revs [][]byte, reach bool) {
	if err := s.cfg.Store.Save(); err != nil {
		s.cfg.Log.Warn("membership: save member file", "err", err)
	}
	s.changeMu.Lock()
	s.cfg.Changed()
	s.changeMu.Unlock()
	s.enqueue(push{except: from, certs: certs, revs: revs, reach: reach})
}

// send writes the queued records until ctx ends.
func (s *Service) send(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-s.queue:
			if p.ifDiffer {
				if s.differs(ctx, p.to) {
					p.certs, p.revs = s.cfg.Store.Records()
				} else {
					continue
				}
			}
			to := []peer.ID{p.to}
			if p.to == "" {
				to = s.host.ConnectedPeers()
			}
			certs := s.withHints(p.certs)
			for _, id := range to {
				if id != p.except && s.cfg.Known(id) {
					s.sendTo(ctx, id, certs, p.revs)
				}
			}
			if p.reach {
				s.wg.Add(1)
				go s.reachMembers(ctx, to, p.except, certs, p.revs)
			}
		}
	}
}

// reachMembers connects to the members that are not in done and not
// except, maxReaching at a time, and sends each the records: news that
// must not wait until some packet connects them (a revoked member would
// otherwise stay welcome at a member that talks to no one else).
func (s *Service) reachMembers(ctx context.Context, done []peer.ID, except peer.ID, certs []member.Member, revs [][]byte) {
	defer s.wg.Done()
	sem := make(chan struct{}, maxReaching)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, id := range s.membersBut(append(slices.Clip(done), except)) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if s.host.Reach(ctx, id) {
				s.sendTo(ctx, id, certs, revs)
			}
		}()
	}
}

// membersBut are the known members valid now, this node and skip left out.
func (s *Service) membersBut(skip []peer.ID) []peer.ID {
	var ids []peer.ID
	for _, m := range s.cfg.Store.Members(s.cfg.Now()) {
		if id := m.Cert.PeerID; id != s.host.ID() && !slices.Contains(skip, id) && s.cfg.Known(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// maxReaching bounds the members reachMembers connects to at once.
const maxReaching = 8

// syncLoop connects to a member this node has no connection to, at start
// and then every SyncEvery ±25%, until ctx ends: each side passes the
// other its records on connecting (Connected).
func (s *Service) syncLoop(ctx context.Context) {
	defer s.wg.Done()
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		s.syncOnce(ctx)
		wait = s.cfg.SyncEvery*3/4 + rand.N(s.cfg.SyncEvery/2+1)
	}
}

// syncOnce tries up to syncTries members, in random order, that this node
// has no connection to, until one is reached.
func (s *Service) syncOnce(ctx context.Context) {
	ids := s.membersBut(s.host.ConnectedPeers())
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids[:min(len(ids), syncTries)] {
		if s.host.Reach(ctx, id) {
			s.cfg.Log.Debug("membership: connected to a member to pass records", "peer", id)
			return
		}
	}
}

// syncTries is how many members one sync tries to reach.
const syncTries = 3

func (s *Service) sendTo(ctx context.Context, p peer.ID, certs []member.Member, revs [][]byte) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := s.host.NewStream(ctx, p, RecordsProtocol)
	if err != nil {
		s.cfg.Log.Debug("membership: pass records on", "to", p, "err", err)
		return
	}
	st.SetDeadline(time.Now().Add(streamTimeout))
	if err := member.WriteRecords(st, certs, revs); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// differs asks p whether it holds the records this node does (their
// digests match); true unless it says so.
func (s *Service) differs(ctx context.Context, p peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := s.host.NewStream(ctx, p, DigestProtocol)
	if err != nil {
		return true // a node before the digest, or none at all: sendTo says
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	d := s.cfg.Store.Digest(s.cfg.Now())
	var answer [1]byte
	if _, err := st.Write(d[:]); err != nil {
		st.Reset()
		return true
	}
	if _, err := io.ReadFull(st, answer[:]); err != nil {
		st.Reset()
		return true
	}
	return answer[0] != digestSame
}

// The digest protocol's answers.
const (
	digestSame   = 0
	digestDiffer = 1
)

// handleDigest answers a known peer's digest: digestSame if it is this
// node's, digestDiffer if not. Anyone else's stream is reset; so is one
// that breaks off.
func (s *Service) handleDigest(st network.Stream) {
	defer st.Close()
	if !s.cfg.Known(st.Conn().RemotePeer()) {
		st.Reset()
		return
	}
	st.SetDeadline(time.Now().Add(streamTimeout))
	var theirs [32]byte
	if _, err := io.ReadFull(st, theirs[:]); err != nil {
		s.Malformed.Add(1)
		st.Reset()
		return
	}
	answer := byte(digestDiffer)
	if theirs == s.cfg.Store.Digest(s.cfg.Now()) {
		answer = digestSame
	}
	st.Write([]byte{answer})
}

// withHints gives each member the addresses this node knows for it now
// (its own for itself), or the hints it came with.
func (s *Service) withHints(ms []member.Member) []member.Member {
	out := make([]member.Member, len(ms))
	for i, m := range ms {
		out[i] = m
		var addrs []ma.Multiaddr
		if m.Cert.PeerID == s.host.ID() {
			addrs = s.host.OwnAddrs(member.MaxHints)
		} else {
			addrs = s.host.PeerAddrs(m.Cert.PeerID, member.MaxHints)
		}
		if len(addrs) > 0 {
			out[i].Addrs = addrs[:min(len(addrs), member.MaxHints)]
		}
	}
	return out
}

// handleRecords takes the records a peer sends. A known peer may send
// everything it knows; anyone else only its own certificate (a new
// member introducing itself) and revocations, a few records in all.
// Every record is verified before it is taken; bad bytes reset the
// stream.
func (s *Service) handleRecords(st network.Stream) {
	defer st.Close()
	from := st.Conn().RemotePeer()
	st.SetDeadline(time.Now().Add(streamTimeout))
	limit := strangerRecords
	if s.cfg.Known(from) {
		limit = maxRecords
	}
	certs, revs, err := s.take(bufio.NewReader(st), from, limit)
	if err != nil {
		s.Malformed.Add(1)
		s.cfg.Log.Debug("membership: records stream reset", "from", from, "err", err)
		st.Reset()
	}
	if len(certs)+len(revs) > 0 {
		s.changed(from, certs, revs, false)
	}
}

// take reads records from r until the end record, taking those that
// verify; it returns what was new, and why it stopped early.
func (s *Service) take(r io.Reader, from peer.ID, limit int) ([]member.Member, [][]byte, error) {
	known := s.cfg.Known(from)
	var certs []member.Member
	var revs [][]byte
	for i := 0; ; i++ {
		rec, err := member.ReadRecord(r)
		if errors.Is(err, io.EOF) {
			return certs, revs, nil
		} else if err != nil {
			return certs, revs, err
		}
		if i == limit {
			return certs, revs, fmt.Errorf("more than %d records", limit)
		}
		if rec.Revocation != nil {
			if added, err := s.cfg.Store.AddRevocation(rec.Revocation); err != nil {
				s.refused(from, err)
			} else if added {
				revs = append(revs, rec.Revocation)
			}
			continue
		}
		c, err := member.ParseCertificate(rec.Certificate)
		if err != nil {
			return certs, revs, err
		}
		if !known && c.PeerID != from {
			continue
		}
		if err := s.cfg.Listed(c.Name, c.PeerID); err != nil {
			s.refused(from, fmt.Errorf("certificate of %s: %w", c.PeerID, err))
			continue
		}
		added, err := s.cfg.Store.AddCertificate(rec.Certificate, rec.Addrs, s.cfg.Now())
		if err != nil {
			s.refused(from, err)
			continue
		}
		if added {
			certs = append(certs, member.Member{Cert: c, Raw: rec.Certificate, Addrs: rec.Addrs})
		}
		if len(rec.Addrs) > 0 && c.PeerID != s.host.ID() {
			s.host.AddHints(c.PeerID, rec.Addrs)
		}
	}
}

func (s *Service) refused(from peer.ID, err error) {
	s.Refused.Add(1)
	s.cfg.Log.Debug("membership: record refused", "from", from, "err", err)
}
