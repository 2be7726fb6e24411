package member

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testInvitation is an invitation from the peer of seed 100, the same
// every time, so that the fuzz corpus stays valid.
func testInvitation(tb testing.TB) *Invitation {
	tb.Helper()
	fp, err := FingerprintOf(testKey(tb, 1).GetPublic())
	if err != nil {
		tb.Fatal(err)
	}
	inv := &Invitation{Inviter: testPeer(tb, 100), Key: fp, Expires: now.Add(24 * time.Hour),
		Addrs: addrs(tb, "/ip4/192.0.2.1/udp/4001/quic-v1", "/ip6/2001:db8::1/tcp/4001")}
	for i := range inv.Secret {
		inv.Secret[i] = byte(i)
	}
	return inv
}

// sameInvitation compares two invitations field by field: multiaddrs
// and times have no useful ==.
func sameInvitation(a, b *Invitation) bool {
	return a.Inviter == b.Inviter && sameAddrs(a.Addrs, b.Addrs) && a.Secret == b.Secret &&
		a.Key == b.Key && a.Expires.Equal(b.Expires)
}

func TestInvitation(t *testing.T) {
	inv := testInvitation(t)
	token := inv.String()
	if !strings.HasPrefix(token, TokenPrefix) || strings.ContainsAny(token, " \t\n=+/") {
		t.Errorf("token %q: want %s then unpadded base64url, one word", token, TokenPrefix)
	}
	for _, s := range []string{token, " " + token + "\n"} {
		back, err := ParseInvitation(s)
		if err != nil {
			t.Fatalf("ParseInvitation(%q): %v", s, err)
		}
		if !sameInvitation(back, inv) {
			t.Errorf("parsed %+v\nwant %+v", back, inv)
		}
	}
}

func TestParseInvitationFails(t *testing.T) {
	token := testInvitation(t).String()
	body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, TokenPrefix))
	if err != nil {
		t.Fatal(err)
	}
	encode := func(b []byte) string { return TokenPrefix + base64.RawURLEncoding.EncodeToString(b) }
	with := func(i int, v byte) string {
		b := append([]byte(nil), body...)
		b[i] = v
		return encode(b)
	}
	addrCount := 1 + int(body[0]) // after the inviter's length and ID
	tests := []struct {
		name, token, msg string
	}{
		{"empty", "", `invitation token "": does not start with mninv1 (copy the whole line 'mynetwork invite' printed)`},
		{"wrong prefix", "mninv2" + token[6:], `invitation token "mninv2` + token[6:24] + `...": does not start with mninv1`},
		{"bad base64", TokenPrefix + "AAA*", `invitation token "mninv1AAA*": not base64url, or cut short: illegal base64 data at input byte 3`},
		{"padded", token + "=", "not base64url, or cut short: illegal base64 data"},
		{"too long", encode(make([]byte, 8<<10+1)), "too long (8193 bytes, at most 8192)"},
		{"nothing after the prefix", TokenPrefix, "malformed: inviter length: 0 bytes left, 1 needed"},
		{"truncated", encode(body[:len(body)-1]), "malformed: expiry: 7 bytes left, 8 needed"},
		{"trailing", encode(append(body, 0)), "malformed: 1 bytes after the end"},
		{"bad inviter", with(2, 0), "malformed: inviter: "},
		{"too many addresses", with(addrCount, maxTokenAddrs+1), "malformed: 17 addresses, at most 16"},
		{"bad address", with(addrCount+2, 0xff), "malformed: address 0: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := ParseInvitation(tt.token)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "invitation token ") {
				t.Errorf("ParseInvitation = %+v, %v\nwant %q", inv, err, tt.msg)
			}
		})
	}
}

func TestInvites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "invites.json")
	v, err := OpenInvites(path, now)
	if err != nil {
		t.Fatalf("OpenInvites without a file: %v", err)
	}
	want := Invite{Name: "b", Routes: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}, Expires: now.Add(time.Hour)}
	secret, err := v.Add(want, now)
	if err != nil {
		t.Fatal(err)
	}
	short, err := v.Add(Invite{Name: "c", Expires: now.Add(time.Minute)}, now)
	if err != nil {
		t.Fatal(err)
	}

	got, err := v.Take(secret, now)
	if err != nil || !reflect.DeepEqual(got, Invite{Name: "b", Routes: want.Routes, Expires: want.Expires, Used: true}) {
		t.Fatalf("Take = %+v, %v", got, err)
	}
	if _, err := v.Take(secret, now); !errors.Is(err, ErrInviteUsed) {
		t.Errorf("Take again = %v, want %v", err, ErrInviteUsed)
	}
	v.Put(secret)
	if _, err := v.Take(secret, now); err != nil {
		t.Errorf("Take after Put = %v", err)
	}
	if _, err := v.Take([32]byte{1}, now); !errors.Is(err, ErrInviteUnknown) {
		t.Errorf("Take(unknown) = %v, want %v", err, ErrInviteUnknown)
	}
	_, err = v.Take(short, now.Add(2*time.Minute))
	if !errors.Is(err, ErrInviteExpired) || !strings.HasSuffix(err.Error(), "(at 2026-12-06T12:01:00Z by the inviter's clock)") {
		t.Errorf("Take(expired) = %v, want %v", err, ErrInviteExpired)
	}

	// The file holds the secrets' hashes, never a secret, for its owner
	// alone.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][32]byte{secret, short} {
		if strings.Contains(string(data), hex.EncodeToString(s[:])) || strings.Contains(string(data), base64.StdEncoding.EncodeToString(s[:])) {
			t.Errorf("the invitations file holds a secret:\n%s", data)
		}
		if !strings.Contains(string(data), secretHash(s)) {
			t.Errorf("the invitations file lacks the hash of a secret:\n%s", data)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("invitations file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}

	// Reopened, a used invitation is still used; once expired, an
	// invitation is gone.
	again, err := OpenInvites(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Take(secret, now); !errors.Is(err, ErrInviteUsed) {
		t.Errorf("Take of a used invitation after reopening = %v, want %v", err, ErrInviteUsed)
	}
	later, err := OpenInvites(path, now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := later.Take(short, now.Add(2*time.Minute)); !errors.Is(err, ErrInviteUnknown) {
		t.Errorf("Take of an invitation that expired before reopening = %v, want %v", err, ErrInviteUnknown)
	}
	if _, err := later.Take(secret, now.Add(2*time.Minute)); !errors.Is(err, ErrInviteUsed) {
		t.Errorf("Take of a used invitation still open = %v, want %v", err, ErrInviteUsed)
	}

	if err := os.WriteFile(path, []byte("["), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenInvites(path, now); err == nil || !strings.HasPrefix(err.Error(), "invitations "+path+": ") {
		t.Errorf("OpenInvites of a broken file = %v", err)
	}
}
