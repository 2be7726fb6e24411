package member

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/config"
)

// TokenPrefix begins every invitation token: invitation 1.
const TokenPrefix = "mninv1"

// Invitation is what a token holds: how to reach the inviter, the
// secret that proves the token, the mesh key the certificate will come
// from, and when the invitation ends (by the inviter's clock, which
// alone checks it).
type Invitation struct {
	Inviter peer.ID
	Addrs   []ma.Multiaddr
	Secret  [32]byte
	Key     Fingerprint
	Expires time.Time
}

// maxTokenAddrs bounds the inviter's addresses in a token.
const maxTokenAddrs = 16

// String is the token: TokenPrefix and the invitation's encoding in
// unpadded base64url, one line a shell passes as one word.
func (inv *Invitation) String() string {
	w := &writer{}
	w.short([]byte(inv.Inviter))
	var addrs [][]byte
	for _, a := range inv.Addrs {
		if b := a.Bytes(); len(b) <= 255 && len(addrs) < maxTokenAddrs {
			addrs = append(addrs, b)
		}
	}
	w.u8(uint8(len(addrs)))
	for _, a := range addrs {
		w.short(a)
	}
	w.raw(inv.Secret[:])
	w.raw(inv.Key[:])
	w.time(inv.Expires)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(w.b)
}

// ParseInvitation decodes a token; any string is safe to give it.
func ParseInvitation(token string) (*Invitation, error) {
	token = strings.TrimSpace(token)
	body, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return nil, fmt.Errorf("invitation token %q: does not start with %s (copy the whole line 'mynetwork invite' printed)", clip(token), TokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("invitation token %q: not base64url, or cut short: %v", clip(token), err)
	}
	if len(b) > 8<<10 {
		return nil, fmt.Errorf("invitation token %q: too long (%d bytes, at most %d)", clip(token), len(b), 8<<10)
	}
	r := &reader{b: b}
	inv := &Invitation{Inviter: r.peerID("inviter")}
	n := int(r.u8("address count"))
	if r.err == nil && n > maxTokenAddrs {
		r.fail("%d addresses, at most %d", n, maxTokenAddrs)
	}
	for i := 0; i < n && r.err == nil; i++ {
		a, err := ma.NewMultiaddrBytes(r.short("address", 255))
		if r.err == nil && err != nil {
			r.fail("address %d: %v", i, err)
		}
		inv.Addrs = append(inv.Addrs, a)
	}
	copy(inv.Secret[:], r.take(32, "secret"))
	copy(inv.Key[:], r.take(32, "mesh key fingerprint"))
	inv.Expires = r.time("expiry")
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("invitation token %q is damaged or cut short (%w): copy the whole line 'mynetwork invite' printed", clip(token), err)
	}
	return inv, nil
}

// clip shortens a token for an error message.
func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// Errors of Invites.Take; the inviter sends them to the joiner.
var (
	ErrInviteUnknown = errors.New("unknown invitation: this node never issued it, or its record is gone")
	ErrInviteUsed    = errors.New("invitation already used: ask for a new one ('mynetwork invite NAME')")
	ErrInviteExpired = errors.New("invitation expired: ask for a new one ('mynetwork invite NAME --ttl ...')")
	ErrTooManyInvite = errors.New("too many open invitations")
)

// MaxInvites bounds the open invitations an admin node keeps.
const MaxInvites = 1024

// Invite is an open invitation as the inviter keeps it: the
// certificate it will sign, and until when.
type Invite struct {
	Name    string         `json:"name"`
	Routes  []netip.Prefix `json:"routes,omitzero"`
	Expires time.Time      `json:"expires"`
	Used    bool           `json:"used,omitempty"`
}

// Invites are an admin node's open invitations, each under the SHA-256
// of its secret: the file never holds a secret that would join. A used
// invitation is kept until it would have expired, to say so. It is safe
// for concurrent use.
type Invites struct {
	path string
	mu   sync.Mutex
	open map[string]Invite // hex of the secret's hash
}

// OpenInvites reads the invitations kept at path, if any, without those
// that expired before now.
func OpenInvites(path string, now time.Time) (*Invites, error) {
	v := &Invites{path: path, open: map[string]Invite{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return v, nil
	} else if err != nil {
		return nil, fmt.Errorf("invitations: %w", err)
	}
	if err := json.Unmarshal(data, &v.open); err != nil {
		return nil, fmt.Errorf("invitations %s: %w", path, err)
	}
	v.purge(now)
	return v, nil
}

func (v *Invites) purge(now time.Time) {
	for h, inv := range v.open {
		if now.After(inv.Expires) {
			delete(v.open, h)
		}
	}
}

func (v *Invites) save() error {
	data, err := json.MarshalIndent(v.open, "", "  ")
	if err != nil {
		return fmt.Errorf("invitations: %w", err)
	}
	return config.WriteFileAtomic(v.path, append(data, '\n'), 0o600)
}

func secretHash(secret [32]byte) string {
	h := sha256.Sum256(secret[:])
	return hex.EncodeToString(h[:])
}

// Add opens an invitation and returns its new secret.
func (v *Invites) Add(inv Invite, now time.Time) ([32]byte, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return secret, fmt.Errorf("invitation secret: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.purge(now)
	if len(v.open) >= MaxInvites {
		return secret, fmt.Errorf("%w: %d, each open until it expires", ErrTooManyInvite, MaxInvites)
	}
	inv.Used = false
	v.open[secretHash(secret)] = inv
	if err := v.save(); err != nil {
		delete(v.open, secretHash(secret))
		return secret, err
	}
	return secret, nil
}

// Take uses the invitation of secret at now: once only, and not after
// it expires. Put gives it back when what it was for failed.
func (v *Invites) Take(secret [32]byte, now time.Time) (Invite, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := secretHash(secret)
	// Looked up by the secret's hash, timing tells nothing of a secret.
	inv, found := v.open[h]
	switch {
	case !found:
		return Invite{}, ErrInviteUnknown
	case inv.Used:
		return Invite{}, ErrInviteUsed
	case now.After(inv.Expires):
		return Invite{}, fmt.Errorf("%w (at %s by the inviter's clock)", ErrInviteExpired, inv.Expires.UTC().Format(time.RFC3339))
	}
	inv.Used = true
	v.open[h] = inv
	if err := v.save(); err != nil {
		inv.Used = false
		v.open[h] = inv
		return Invite{}, err
	}
	return inv, nil
}

// Put reopens an invitation Take used.
func (v *Invites) Put(secret [32]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := secretHash(secret)
	if inv, ok := v.open[h]; ok {
		inv.Used = false
		v.open[h] = inv
		v.save()
	}
}
