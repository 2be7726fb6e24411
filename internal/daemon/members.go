package daemon

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/internal/member"
	"github.com/mynetwork/mynetwork/internal/membership"
)

// memberTick is how often the members are looked at again without news:
// certificates expire, and news that came before the node was up waits
// for it.
const memberTick = 30 * time.Second

// memberSync is how often a node that connects on demand connects to a
// member it has no connection to, to take the news it may have missed
// (membership.Config.SyncEvery).
const memberSync = 30 * time.Minute

// newMembers sets up membership from the config's mesh section: the
// store with the member file and this node's certificate, and on an admin
// node the signing key and the open invitations. Without a mesh section
// there is none.
func (d *Daemon) newMembers() error {
	m := d.cfg.Mesh
	if m == nil {
		return nil
	}
	keys, err := m.TrustKeys()
	if err != nil {
		return err
	}
	trust, err := member.NewTrust(keys...)
	if err != nil {
		return fmt.Errorf("mesh.trust: %w", err)
	}
	now := time.Now()
	store := member.NewStore(trust, config.MemberFile(d.opts.ConfigPath))
	if err := store.Load(now); err != nil {
		d.log.Warn("member file: records left out", "err", err)
	}
	if err := d.ownCertificate(store, now); err != nil {
		return err
	}
	cfg := membership.Config{Store: store, Known: d.isPeer, Listed: d.listedConflict, Changed: d.membersChanged, Log: d.log}
	if d.cfg.Idle() > 0 {
		cfg.SyncEvery = memberSync // it may talk to no member for days
	}
	// With a DHT a member is found by its ID; without one, by the address
	// hints each connection's records carry.
	cfg.SkipInStep = d.cfg.HasDHT()
	if m.SigningKey != "" {
		if cfg.Signer, err = loadSigningKey(m.SigningKeyPath(d.opts.ConfigPath), trust); err != nil {
			return err
		}
		if cfg.Invites, err = member.OpenInvites(config.InviteFile(d.opts.ConfigPath), now); err != nil {
			return err
		}
	}
	d.members = membership.New(cfg)
	return nil
}

// ownCertificate checks this node's certificate, if it has one, and
// puts it in the store, which passes it on. A renewed one the member file
// holds wins over the config's, which may have expired.
func (d *Daemon) ownCertificate(store *member.Store, now time.Time) error {
	m := d.cfg.Mesh
	if m.Certificate == "" {
		return nil
	}
	raw, _ := base64.StdEncoding.DecodeString(m.Certificate) // validated by Load
	c, err := member.ParseCertificate(raw)
	if err == nil {
		err = store.Trust().Verify(c, now)
	}
	switch {
	case err != nil:
	case c.PeerID != d.self:
		err = fmt.Errorf("it is %s's, not this node's (%s)", c.PeerID, d.self)
	case c.Name != m.Name:
		err = fmt.Errorf("it names the node %q, mesh.name says %q", c.Name, m.Name)
	default:
		_, err = store.AddCertificate(raw, nil, now)
	}
	own, ok := store.Member(d.self)
	if !ok || own.Cert.Name != m.Name || store.Trust().Verify(own.Cert, now) != nil {
		return fmt.Errorf("%s: mesh.certificate: %w", d.opts.ConfigPath, err)
	}
	if err != nil {
		d.log.Info("this node's certificate in the config is not valid; the renewed one in the member file is", "err", err)
	}
	if left := own.Cert.NotAfter.Sub(now); left < membership.RenewWithin {
		d.log.Warn("this node's member certificate expires soon; an admin node renews it while the two are connected", "expires", own.Cert.NotAfter)
	}
	return nil
}

// loadSigningKey reads an admin node's mesh key, which must be one the
// node trusts.
func loadSigningKey(path string, trust *member.Trust) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mesh.signingKey: %w", err)
	}
	key, err := member.UnmarshalKey(b)
	if err != nil {
		return nil, fmt.Errorf("mesh.signingKey %s: %w", path, err)
	}
	fp, err := member.FingerprintOf(key.GetPublic())
	if err != nil {
		return nil, err
	}
	if !trust.Trusts(fp) {
		return nil, fmt.Errorf("mesh.signingKey %s: its mesh key %s is not in mesh.trust", path, fp)
	}
	return key, nil
}

// isPeer says whether p is a peer now, listed or a member.
func (d *Daemon) isPeer(p peer.ID) bool {
	_, ok := d.peerByID(p)
	return ok
}

// listedConflict refuses a member's name or peer ID that clashes with
// this node or a peer the config lists (see membership.Config.Listed).
func (d *Daemon) listedConflict(name string, id peer.ID) error {
	d.peersMu.RLock()
	cfg := d.cfg
	d.peersMu.RUnlock()
	if id == d.self {
		return nil
	}
	listedPeers := peersOf(cfg)
	if slices.ContainsFunc(listedPeers, func(p peerInfo) bool { return p.id == id }) {
		return nil
	}
	v4 := netip.Addr{}
	if id != "" {
		v4 = config.AddressesOf(id).IPv4
	}
	if v4 == d.addrs.IPv4 {
		return fmt.Errorf("its peer ID derives %s, this node's address", v4)
	}
	if name != "" && cfg.Mesh != nil && name == cfg.Mesh.Name {
		return fmt.Errorf("%q is this node's name", name)
	}
	for _, p := range listedPeers {
		if name != "" && p.name == name {
			return fmt.Errorf("%q is the name of listed peer %s", name, p.id)
		}
		if v4.IsValid() && p.addrs.IPv4 == v4 {
			return fmt.Errorf("its peer ID derives %s, the address of listed peer %s", v4, p.name)
		}
	}
	return nil
}

// withMembers are cfg's listed peers, then the members: each valid now,
// not this node, not listed, deriving an address nobody before it has.
// A member's networks that another peer or this node has are left out.
func (d *Daemon) withMembers(cfg *config.Config) []peerInfo {
	peers := peersOf(cfg)
	if d.members == nil {
		return peers
	}
	members := d.members.Store().Members(time.Now())
	if !d.stillMember(cfg, members) {
		return peers
	}
	ids := map[peer.ID]bool{d.self: true}
	v4s := map[netip.Addr]bool{d.addrs.IPv4: true}
	routed := map[netip.Prefix]bool{}
	for _, r := range cfg.Routes {
		pfx, _ := config.ParseRoute(r.Net) // validated by Load
		routed[pfx] = true
	}
	for _, p := range peers {
		ids[p.id], v4s[p.addrs.IPv4] = true, true
		for _, r := range p.routes {
			routed[r] = true
		}
	}
	for _, m := range members {
		c := m.Cert
		if ids[c.PeerID] || v4s[c.IPv4] {
			continue
		}
		ids[c.PeerID], v4s[c.IPv4] = true, true
		p := peerInfo{name: c.Name, id: c.PeerID, addrs: config.AddressesOf(c.PeerID), dial: m.Addrs, member: true}
		for _, r := range c.Routes {
			if !routed[r] {
				routed[r] = true
				p.routes = append(p.routes, r)
			}
		}
		peers = append(peers, p)
	}
	return peers
}

// stillMember says whether this node, if it has a certificate, is still
// among members, the store's Members now (a certificate in its validity
// window and not revoked): the members refuse it otherwise, and it stops
// trying them.
func (d *Daemon) stillMember(cfg *config.Config, members []member.Member) bool {
	if cfg.Mesh.Certificate == "" {
		return true
	}
	if slices.ContainsFunc(members, func(m member.Member) bool { return m.Cert.PeerID == d.self }) {
		return true
	}
	if !d.notMember.Swap(true) {
		d.log.Error("this node's member certificate was revoked or expired: the members refuse it, and it keeps only the peers its config lists")
	}
	return false
}

// membersChanged moves the node to the members the store holds now: a
// new member becomes a peer, one revoked or expired is dropped. Routes
// added at run time stay.
func (d *Daemon) membersChanged() {
	d.routeMu.Lock()
	defer d.routeMu.Unlock()
	if !d.up.Load() {
		return // the next tick after start looks again
	}
	peers := d.peersFor(d.cfg)
	if !slices.EqualFunc(peers, d.peers, samePeer) {
		res := reloadResult(d.peers, peers)
		if err := d.apply(d.cfg, peers, memberTable(d.eng.Table(), d.peers, peers)); err != nil {
			d.log.Warn("members changed, but the node could not follow", "err", err)
			return
		}
		d.log.Info("members changed", "added", res.Added, "removed", res.Removed, "renamed", res.Renamed, "peers", len(peers))
	}
	d.block()
}

// block makes the node refuse the revoked peers that are not peers now
// (one listed, or admitted again by a later certificate, is not).
func (d *Daemon) block() {
	var out []peer.ID
	for _, p := range d.members.Store().Trust().Revoked.Peers() {
		if !d.isPeer(p) {
			out = append(out, p)
		}
	}
	d.node.SetBlocked(out)
}

// samePeer: nothing routing or naming depends on differs.
func samePeer(a, b peerInfo) bool {
	return a.id == b.id && a.name == b.name && a.member == b.member && slices.Equal(a.routes, b.routes)
}

// memberTable is t without the routes to peers that left or changed, and
// with the routes of those that came or changed, unless a prefix is
// routed already.
func memberTable(t *engine.Table, old, peers []peerInfo) *engine.Table {
	changed := func(p peerInfo, in []peerInfo) bool {
		return !slices.ContainsFunc(in, func(q peerInfo) bool { return q.id == p.id && slices.Equal(q.routes, p.routes) })
	}
	gone := map[peer.ID]bool{}
	for _, p := range old {
		if changed(p, peers) {
			gone[p.id] = true
		}
	}
	for _, r := range t.Routes() {
		if gone[r.Peer] {
			t = t.Without(r.Prefix)
		}
	}
	for _, p := range peers {
		if !changed(p, old) {
			continue
		}
		for _, r := range routesOf(p) {
			if _, taken := t.Has(r.Prefix); !taken {
				t = t.With(r)
			}
		}
	}
	return t
}

// membersService runs the membership protocols on the node, and looks at
// the members again every memberTick.
type membersService struct {
	d    *Daemon
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func (c *membersService) Start(ctx context.Context) error {
	c.d.block()
	c.d.members.Start(ctx, c.d.node)
	ctx, c.stop = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(memberTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.d.members.Renew(time.Now())
				c.d.membersChanged()
			}
		}
	}()
	return nil
}

func (c *membersService) Close() error {
	c.stop()
	c.wg.Wait()
	c.d.members.Close()
	return nil
}

var _ control.Admin = (*Daemon)(nil)

// Invite opens an invitation on an admin node.
func (d *Daemon) Invite(_ context.Context, req control.InviteRequest) (control.Invitation, error) {
	if d.members == nil {
		return control.Invitation{}, control.Errorf(control.ErrConflict, "invite: %w", membership.ErrNotAdmin)
	}
	var routes []netip.Prefix
	for _, s := range req.Routes {
		pfx, err := config.ParseRoute(s)
		if err != nil {
			return control.Invitation{}, control.Errorf(control.ErrBadRequest, "invite: route %w", err)
		}
		routes = append(routes, pfx)
	}
	token, expires, err := d.members.Invite(req.Name, routes, req.TTL)
	if err != nil {
		return control.Invitation{}, memberError("invite", err)
	}
	d.log.Info("invitation issued", "name", req.Name, "expires", expires)
	return control.Invitation{Token: token, Expires: expires}, nil
}

// Revoke revokes a member on an admin node.
func (d *Daemon) Revoke(_ context.Context, req control.RevokeRequest) (control.Revoked, error) {
	if d.members == nil {
		return control.Revoked{}, control.Errorf(control.ErrConflict, "revoke: %w", membership.ErrNotAdmin)
	}
	id, name, err := d.members.Revoke(req.Member)
	if err != nil {
		return control.Revoked{}, memberError("revoke", err)
	}
	return control.Revoked{Name: name, PeerID: id.String()}, nil
}

// memberError gives a membership error its control kind.
func memberError(op string, err error) error {
	kind := control.ErrInternal
	switch {
	case errors.Is(err, membership.ErrNotAdmin), errors.Is(err, membership.ErrNameTaken), errors.Is(err, member.ErrTooManyInvite):
		kind = control.ErrConflict
	case errors.Is(err, membership.ErrBadInput):
		kind = control.ErrBadRequest
	case errors.Is(err, membership.ErrNoMember):
		kind = control.ErrNotFound
	}
	return control.Errorf(kind, "%s: %w", op, err)
}

// connected passes what the node knows of the members to a peer it has
// just connected to.
func (d *Daemon) connected(p peer.ID) {
	if d.members != nil {
		d.members.Connected(p)
	}
}

// meshStatus is the membership part of status; nil without a mesh section.
func (d *Daemon) meshStatus() *control.MeshStatus {
	if d.members == nil {
		return nil
	}
	d.peersMu.RLock()
	m := d.cfg.Mesh
	d.peersMu.RUnlock()
	store := d.members.Store()
	svc := d.members
	st := &control.MeshStatus{Name: m.Name, Admin: svc.Admin(), Revocations: store.Trust().Revoked.Len(),
		MalformedRecords: svc.Malformed.Load(), RefusedRecords: svc.Refused.Load(), RefusedJoins: svc.JoinsRefused.Load()}
	for _, s := range m.Trust {
		if k, err := config.ParseMeshPublicKey(s); err == nil {
			fp, _ := member.FingerprintOf(k)
			st.Trust = append(st.Trust, fp.String())
		}
	}
	now := time.Now()
	for _, mm := range store.Members(now) {
		if mm.Cert.PeerID == d.self {
			st.Certificate = mm.Cert.NotAfter
		} else {
			st.Members++
		}
	}
	return st
}

var (
	mMembers          = metricDesc("members", "Other members with a valid certificate this node holds.")
	mRevocations      = metricDesc("revocations", "Revocation entries this node holds.")
	mRecordsMalformed = metricDesc("member_record_streams_malformed_total", "Member record and digest streams reset for bytes that broke the protocol.")
	mRecordsRefused   = metricDesc("member_records_refused_total", "Member certificates and revocations received that did not verify or were not taken.")
	mJoinsRefused     = metricDesc("joins_refused_total", "Joins this admin node refused (unknown, used or expired invitation, taken name or address).")
)

// membersCollector reports membership to Prometheus at scrape time.
type membersCollector struct{ d *Daemon }

func (membersCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mMembers, mRevocations, mRecordsMalformed, mRecordsRefused, mJoinsRefused} {
		ch <- d
	}
}

func (c membersCollector) Collect(ch chan<- prometheus.Metric) {
	st, svc := c.d.meshStatus(), c.d.members
	gauge(ch, mMembers, float64(st.Members))
	gauge(ch, mRevocations, float64(st.Revocations))
	counter(ch, mRecordsMalformed, svc.Malformed.Load())
	counter(ch, mRecordsRefused, svc.Refused.Load())
	counter(ch, mJoinsRefused, svc.JoinsRefused.Load())
}
