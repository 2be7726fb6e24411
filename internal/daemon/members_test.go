package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/member"
	"github.com/mynetwork/mynetwork/internal/membership"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestMembersByInvitation: a is the mesh's admin; b and c join with
// tokens from a, and b reaches c with no peer in any config; a token
// used twice is refused; once a revokes c, b drops it.
func TestMembersByInvitation(t *testing.T) {
	a, b, c := newTestNode(t, "mba"), newTestNode(t, "mbb"), newTestNode(t, "mbc")
	makeAdmin(t, a, "a")
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	a.up(t, "mba", Options{SOCKS5: "off", Metrics: metrics})
	ctx := context.Background()
	tokenB := joinTest(t, a, b, "b")
	b.up(t, "mbb", Options{SOCKS5: "off"})
	joinTest(t, a, c, "c")
	c.up(t, "mbc", Options{SOCKS5: "off"})
	reaches := func(from *testNode, name string) func() bool {
		return func() bool {
			st, err := from.client.Status(ctx)
			return err == nil && slices.ContainsFunc(st.Peers, func(p control.PeerStatus) bool { return p.Name == name && p.Connected })
		}
	}
	b.reach(t, "c")
	p2ptest.Eventually(t, "b connected to c", reaches(b, "c"))
	if _, err := b.client.Ping(ctx, control.PingRequest{Peer: "c"}); err != nil {
		t.Fatalf("b pings c by name: %v", err)
	}
	st, err := b.client.Status(ctx)
	if err != nil || st.Mesh == nil || st.Mesh.Name != "b" || st.Mesh.Admin || st.Mesh.Members != 2 || st.Mesh.Certificate.IsZero() ||
		!slices.ContainsFunc(st.Peers, func(p control.PeerStatus) bool { return p.Name == "c" && p.Member }) {
		t.Fatalf("b's status: %+v %+v, %v", st.Mesh, st.Peers, err)
	}

	inv, err := member.ParseInvitation(tokenB)
	if err != nil {
		t.Fatal(err)
	}
	d := newTestNode(t, "mbd")
	key, _ := d.cfg.PrivKey()
	if _, err := membership.Join(ctx, key, inv, ""); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("a token used twice: %v", err)
	}

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"mynetwork_members 2\n", "mynetwork_joins_refused_total 1\n", "mynetwork_revocations 0\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("a's metrics lack %q", want)
		}
	}

	if r, err := a.client.Revoke(ctx, control.RevokeRequest{Member: "c"}); err != nil || r.Name != "c" {
		t.Fatalf("revoke c: %+v, %v", r, err)
	}
	p2ptest.Eventually(t, "b dropped c", func() bool {
		st, err := b.client.Status(ctx)
		return err == nil && !slices.ContainsFunc(st.Peers, func(p control.PeerStatus) bool { return p.Name == "c" })
	})
	// c still lists b (it heard its own revocation and keeps only listed
	// peers, of which it has none), and b refuses its connections.
	time.Sleep(time.Second)
	for _, n := range []*testNode{a, b} {
		ps, err := n.client.Peers(ctx)
		if err != nil || slices.ContainsFunc(ps, func(p control.SwarmPeer) bool { return p.ID == c.id }) {
			t.Errorf("%s is still connected to the revoked c: %+v, %v", n.cfgPath, ps, err)
		}
	}
}

// TestStillMember: a node with a certificate is still a member while the
// store holds it valid, not once it expired or was revoked (said once),
// however long another member stays; one without a certificate always is.
func TestStillMember(t *testing.T) {
	key, err := member.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	trust, err := member.NewTrust(key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	self, _ := newTestNode(t, "stm").cfg.ID()
	now := time.Now()
	cert, raw, err := member.Issue(key, self, "a", nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newTestNode(t, "stm2").cfg.ID()
	_, otherRaw, err := member.Issue(key, other, "b", nil, now, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	store := member.NewStore(trust, "")
	for _, r := range [][]byte{raw, otherRaw} {
		if _, err := store.AddCertificate(r, nil, now); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	d := &Daemon{self: self, log: slog.New(slog.NewTextHandler(&logs, nil))}
	withCert := &config.Config{Mesh: &config.Mesh{Certificate: base64.StdEncoding.EncodeToString(raw)}}
	if !d.stillMember(withCert, store.Members(now)) {
		t.Error("not a member with a valid certificate")
	}
	if d.stillMember(withCert, store.Members(now.Add(time.Hour+member.ClockSkew))) {
		t.Error("still a member once its certificate expired")
	}
	rev := &member.Revocation{PeerID: self, Serial: cert.Serial, Issued: now}
	if err := rev.Sign(key); err != nil {
		t.Fatal(err)
	}
	b, err := rev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddRevocation(b); err != nil {
		t.Fatal(err)
	}
	if d.stillMember(withCert, store.Members(now)) {
		t.Error("still a member once its certificate was revoked")
	}
	if got := strings.Count(logs.String(), "revoked or expired"); got != 1 {
		t.Errorf("said %d times that it is no member: %s", got, logs.String())
	}
	if !d.stillMember(&config.Config{Mesh: &config.Mesh{}}, nil) {
		t.Error("a node without a certificate is no member")
	}
}

// makeAdmin gives n a mesh key and its own certificate, as 'mesh init' does.
func makeAdmin(t *testing.T, n *testNode, name string) {
	t.Helper()
	key, err := member.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := member.MarshalKey(key)
	keyPath := filepath.Join(filepath.Dir(n.cfgPath), "mesh.key")
	if err := config.WriteFileAtomic(keyPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	self, _ := n.cfg.ID()
	_, cert, err := member.Issue(key, self, name, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := config.MeshPublicKey(key.GetPublic())
	n.cfg.Mesh = &config.Mesh{Name: name, Trust: []string{pub}, SigningKey: "mesh.key", Certificate: base64.StdEncoding.EncodeToString(cert)}
}

// joinTest has admin invite n as name and n join, as 'join' does; it
// returns the token.
func joinTest(t *testing.T, admin, n *testNode, name string) string {
	t.Helper()
	ctx := context.Background()
	inv, err := admin.client.Invite(ctx, control.InviteRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := member.ParseInvitation(inv.Token)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := n.cfg.PrivKey()
	j, err := membership.Join(ctx, key, parsed, config.MemberFile(n.cfgPath))
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	if err := j.Store.Save(); err != nil {
		t.Fatal(err)
	}
	pub, _ := config.MeshPublicKey(j.Key)
	n.cfg.Mesh = &config.Mesh{Name: name, Trust: []string{pub}, Certificate: base64.StdEncoding.EncodeToString(j.Raw)}
	return inv.Token
}
