package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/member"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

func TestJoin(t *testing.T) {
	key := newMeshKey(t)
	hA := newHost(t, nil)
	store := newStore(t, key)
	issue(t, key, hA.ID(), "a", time.Now(), nil, store) // the admin's own
	// skew is how far the admin's clock is ahead.
	var skew atomic.Int64
	var changed atomic.Int32
	admin, _ := startService(t, hA, Config{
		Store: store, Signer: key, Invites: newInvites(t),
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	}, &changed)
	keyB, idB := p2ptest.NewKey(t)
	ctx := context.Background()
	invite := func(name string, ttl time.Duration) *member.Invitation {
		t.Helper()
		token, _, err := admin.Invite(name, nil, ttl)
		if err != nil {
			t.Fatalf("Invite(%q): %v", name, err)
		}
		inv, err := member.ParseInvitation(token)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}

	routes := []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}
	token, expires, err := admin.Invite("b", routes, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expires); d < DefaultTTL-time.Minute || d > DefaultTTL {
		t.Errorf("the invitation expires in %s, want %s", d, DefaultTTL)
	}
	inv, err := member.ParseInvitation(token)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := member.FingerprintOf(key.GetPublic())
	if inv.Inviter != hA.ID() || len(inv.Addrs) == 0 || inv.Key != fp || !inv.Expires.Equal(expires) {
		t.Errorf("invitation %+v: want A's ID and addresses, the mesh key %s, expiry %s", inv, fp, expires)
	}

	path := filepath.Join(t.TempDir(), "joined.json")
	j, err := Join(ctx, keyB, inv, path)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if c := j.Cert; c.PeerID != idB || c.Name != "b" || !reflect.DeepEqual(c.Routes, routes) || !j.Key.Equals(key.GetPublic()) {
		t.Errorf("joined with %+v under %v: want B's certificate named b with the routes, from the mesh key", c, j.Key)
	}
	if m, ok := j.Store.Member(hA.ID()); !ok || m.Cert.Name != "a" || len(m.Addrs) == 0 {
		t.Errorf("the joined store has A as %+v, %v: want its certificate with its addresses", m, ok)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Join wrote the member file: %v", err)
	}
	if m, ok := store.Member(idB); !ok || m.Cert.Name != "b" {
		t.Errorf("A's store has B as %+v, %v", m, ok)
	}
	if changed.Load() != 1 {
		t.Errorf("Changed called %d times, want 1", changed.Load())
	}
	if _, _, err := admin.Invite("b", nil, 0); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Invite of the new member's name = %v, want %v", err, ErrNameTaken)
	}

	refusals := []struct {
		name string
		inv  func() *member.Invitation
		msg  string
	}{
		{"used", func() *member.Invitation { return inv }, "invitation already used"},
		{"expired", func() *member.Invitation {
			inv := invite("c", time.Hour)
			skew.Store(int64(2 * time.Hour))
			return inv
		}, "invitation expired"},
		{"unknown", func() *member.Invitation {
			inv := *inv
			inv.Secret[0] ^= 1
			return &inv
		}, "unknown invitation"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			defer skew.Store(0)
			_, err := Join(ctx, keyB, tt.inv(), "")
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Join = %v, want %v: %q", err, ErrRefused, tt.msg)
			}
		})
	}

	// A token that names another mesh key than the inviter's: the joiner
	// refuses the answer.
	other := invite("d", 0)
	other.Key[0] ^= 1
	if _, err := Join(ctx, keyB, other, ""); err == nil || errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), fmt.Sprintf("the inviter's mesh key %s is not %s, the one the token names", fp, other.Key)) {
		t.Errorf("Join with another mesh key in the token = %v", err)
	}

	// A join in another version is reset.
	stranger := newHost(t, nil)
	connect(t, stranger, hA)
	st, err := stranger.NewStream(ctx, hA.ID(), JoinProtocol)
	if err != nil {
		t.Fatal(err)
	}
	st.Write(append([]byte{2}, make([]byte, 32)...))
	if _, err := io.ReadAll(st); err == nil {
		t.Error("a join of version 2 was answered")
	}
	st.Close()
	p2ptest.Eventually(t, "the bad join counted", func() bool { return admin.Malformed.Load() == 1 })
}

func TestInviteRefuses(t *testing.T) {
	key := newMeshKey(t)
	h := newHost(t, nil)
	store := newStore(t, key)
	issue(t, key, h.ID(), "a", time.Now(), nil, store)
	admin, _ := startService(t, h, Config{Store: store, Signer: key, Invites: newInvites(t),
		Listed: func(name string, _ peer.ID) error {
			if name == "listed" {
				return errors.New(`"listed" is the name of a listed peer`)
			}
			return nil
		}}, nil)
	tests := []struct {
		name, who string
		ttl       time.Duration
		want      error
		msg       string
	}{
		{"a member's name", "a", 0, ErrNameTaken, `name taken: "a" is the name of member ` + h.ID().String()},
		{"a listed peer's name", "listed", 0, ErrNameTaken, `name taken: "listed" is the name of a listed peer`},
		{"invalid name", "-b", 0, ErrBadInput, `bad input: "-b" is not a valid name`},
		{"ttl too long", "b", MaxTTL + time.Second, ErrBadInput, "bad input: ttl 720h0m1s: want more than 0 and at most 720h0m0s"},
		{"negative ttl", "b", -time.Second, ErrBadInput, "bad input: ttl -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := admin.Invite(tt.who, nil, tt.ttl)
			if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("Invite = %v, want %v: %q", err, tt.want, tt.msg)
			}
		})
	}

	plain := New(Config{Store: store})
	if _, _, err := plain.Invite("b", nil, 0); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("Invite without a signing key = %v, want %v", err, ErrNotAdmin)
	}
	if _, _, err := plain.Revoke("a"); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("Revoke without a signing key = %v, want %v", err, ErrNotAdmin)
	}
}
