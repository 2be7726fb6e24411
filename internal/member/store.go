package member

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/config"
)

// MaxMembers bounds the certificates a Store holds, one per peer: each
// costs a few hundred bytes, and members spread them to every member.
const MaxMembers = 4096

// MaxHints bounds the addresses a Store keeps for one member.
const MaxHints = 8

// ErrStoreFull is returned when a Store holds MaxMembers certificates.
var ErrStoreFull = errors.New("member store full")

// Member is a peer with a valid certificate, and where it was last heard
// of (address hints, which its peers pass on).
type Member struct {
	Cert  *Certificate
	Raw   []byte // the certificate as encoded
	Addrs []ma.Multiaddr
}

// Store holds the member certificates and revocations a node has heard,
// each verified before it is taken, at most one certificate per peer
// (the one issued last). It is safe for concurrent use, and it can keep
// itself in a file.
type Store struct {
	trust *Trust
	path  string // "" for none

	mu    sync.Mutex
	certs map[peer.ID]*Member
	revs  [][]byte          // the revocations as encoded, in the order heard
	seen  map[[32]byte]bool // hashes of revs
}

// NewStore makes an empty store that verifies by trust and, when path is
// not empty, keeps itself in that file. Revocations go on trust's list.
func NewStore(trust *Trust, path string) *Store {
	if trust.Revoked == nil {
		trust.Revoked = NewRevocationList()
	}
	return &Store{trust: trust, path: path, certs: map[peer.ID]*Member{}, seen: map[[32]byte]bool{}}
}

// Trust is the store's trust.
func (s *Store) Trust() *Trust { return s.trust }

// storeFile is the file's JSON form.
type storeFile struct {
	Certificates []storeCert `json:"certificates"`
	Revocations  []string    `json:"revocations"`
}

type storeCert struct {
	Certificate string   `json:"certificate"`
	Addrs       []string `json:"addrs,omitzero"`
}

// Load reads the store's file, if it exists, taking what still verifies
// at now: a certificate that expired, or from a key no longer trusted,
// is dropped, and its error returned among the others.
func (s *Store) Load(now time.Time) error {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("member file: %w", err)
	}
	var f storeFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("member file %s: %w", s.path, err)
	}
	var errs []error
	for i, r := range f.Revocations {
		b, err := base64.StdEncoding.DecodeString(r)
		if err == nil {
			_, err = s.AddRevocation(b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("member file %s: revocations[%d]: %w", s.path, i, err))
		}
	}
	for i, c := range f.Certificates {
		b, err := base64.StdEncoding.DecodeString(c.Certificate)
		if err == nil {
			_, err = s.AddCertificate(b, ParseAddrs(c.Addrs), now)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("member file %s: certificates[%d]: %w", s.path, i, err))
		}
	}
	return errors.Join(errs...)
}

// Save writes the store to its file (mode 0600), if it has one.
func (s *Store) Save() error {
	if s.path == "" {
		return nil
	}
	var f storeFile
	certs, revs := s.Records()
	for _, m := range certs {
		c := storeCert{Certificate: base64.StdEncoding.EncodeToString(m.Raw)}
		for _, a := range m.Addrs {
			c.Addrs = append(c.Addrs, a.String())
		}
		f.Certificates = append(f.Certificates, c)
	}
	for _, r := range revs {
		f.Revocations = append(f.Revocations, base64.StdEncoding.EncodeToString(r))
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("member file: %w", err)
	}
	return config.WriteFileAtomic(s.path, append(data, '\n'), 0o600)
}

// ParseAddrs keeps the strings that are multiaddrs, at most MaxHints.
func ParseAddrs(ss []string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range ss {
		if a, err := ma.NewMultiaddr(s); err == nil && len(out) < MaxHints {
			out = append(out, a)
		}
	}
	return out
}

// AddCertificate verifies an encoded certificate at now and keeps it,
// with up to MaxHints of addrs, unless the store has one of the same
// peer issued as late or later (then only the hints are taken). It
// reports whether the certificate was new to the store.
func (s *Store) AddCertificate(raw []byte, addrs []ma.Multiaddr, now time.Time) (bool, error) {
	c, err := ParseCertificate(raw)
	if err != nil {
		return false, err
	}
	addrs = addrs[:min(len(addrs), MaxHints)]
	if s.holds(c.PeerID, raw, addrs) {
		return false, nil // every connection passes the whole store: no signature checked twice
	}
	if err := s.trust.Verify(c, now); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.certs[c.PeerID]
	if old != nil && !newer(c, old.Cert) {
		if len(addrs) > 0 && c.Serial == old.Cert.Serial && c.Key == old.Cert.Key {
			old.Addrs = slices.Clone(addrs)
		}
		return false, nil
	}
	if old == nil && len(s.certs) >= MaxMembers {
		return false, fmt.Errorf("certificate of %s: %w (%d)", c.PeerID, ErrStoreFull, MaxMembers)
	}
	s.certs[c.PeerID] = &Member{Cert: c, Raw: slices.Clone(raw), Addrs: slices.Clone(addrs)}
	return true, nil
}

// holds says whether the store holds exactly raw for p, taking addrs as
// its hints if there are any.
func (s *Store) holds(p peer.ID, raw []byte, addrs []ma.Multiaddr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.certs[p]
	if old == nil || !bytes.Equal(old.Raw, raw) {
		return false
	}
	if len(addrs) > 0 {
		old.Addrs = slices.Clone(addrs)
	}
	return true
}

// newer says whether a was issued after b (then by serial, so that two
// keys' certificates of one second have an order).
func newer(a, b *Certificate) bool {
	if !a.NotBefore.Equal(b.NotBefore) {
		return a.NotBefore.After(b.NotBefore)
	}
	return a.Serial > b.Serial
}

// AddRevocation verifies an encoded revocation and keeps it, dropping
// the certificates it withdraws. It reports whether it was new.
func (s *Store) AddRevocation(raw []byte) (bool, error) {
	h := sha256.Sum256(raw)
	s.mu.Lock()
	known := s.seen[h]
	s.mu.Unlock()
	if known {
		return false, nil
	}
	r, err := ParseRevocation(raw)
	if err != nil {
		return false, err
	}
	if err := s.trust.VerifyRevocation(r); err != nil {
		return false, err
	}
	if err := s.trust.Revoked.Add(r); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[h] {
		return false, nil
	}
	s.seen[h] = true
	s.revs = append(s.revs, slices.Clone(raw))
	if m := s.certs[r.PeerID]; m != nil && s.trust.Revoked.Revokes(m.Cert) {
		delete(s.certs, r.PeerID)
	}
	return true, nil
}

// Members are the peers whose certificates are valid at now, by name.
func (s *Store) Members(now time.Time) []Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Member
	for _, m := range s.certs {
		if inWindow(m.Cert, now) && !s.trust.Revoked.Revokes(m.Cert) {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.Cert.Name != b.Cert.Name {
			if a.Cert.Name < b.Cert.Name {
				return -1
			}
			return 1
		}
		return newerFirst(a.Cert, b.Cert)
	})
	return out
}

func newerFirst(a, b *Certificate) int {
	switch {
	case newer(a, b):
		return -1
	case newer(b, a):
		return 1
	}
	return 0
}

// inWindow is Verify's time check alone.
func inWindow(c *Certificate, now time.Time) bool {
	return !now.Add(ClockSkew).Before(c.NotBefore) && now.Add(-ClockSkew).Before(c.NotAfter)
}

// Digest sums up what the store holds that a peer would take: the
// certificates valid at now and the revocations, each by its SHA-256, in
// order. Stores that hold the same records have the same digest, whatever
// order they heard them in and whatever address hints they keep.
func (s *Store) Digest(now time.Time) [32]byte {
	var certs [][32]byte
	for _, m := range s.Members(now) {
		certs = append(certs, sha256.Sum256(m.Raw))
	}
	s.mu.Lock()
	revs := make([][32]byte, 0, len(s.seen))
	for h := range s.seen {
		revs = append(revs, h)
	}
	s.mu.Unlock()
	h := sha256.New()
	for i, part := range [][][32]byte{certs, revs} {
		slices.SortFunc(part, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
		fmt.Fprintf(h, "%d:%d;", i, len(part))
		for _, x := range part {
			h.Write(x[:])
		}
	}
	return [32]byte(h.Sum(nil))
}

// Member is p's certificate, if the store holds one.
func (s *Store) Member(p peer.ID) (Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.certs[p]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// Records are everything the store holds, to pass on: its certificates
// (expired ones too, which the receiver drops), newest first, and its
// revocations.
func (s *Store) Records() ([]Member, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	certs := make([]Member, 0, len(s.certs))
	for _, m := range s.certs {
		certs = append(certs, *m)
	}
	slices.SortFunc(certs, func(a, b Member) int { return newerFirst(a.Cert, b.Cert) })
	return certs, slices.Clone(s.revs)
}
