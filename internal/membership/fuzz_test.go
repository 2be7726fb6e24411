package membership

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mynetwork/mynetwork/internal/member"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// FuzzJoinAnswer: whatever an inviter answers, the joiner returns a
// result or an error, never panics, and takes nothing that does not
// verify: a result's certificate is the joiner's own.
func FuzzJoinAnswer(f *testing.F) {
	f.Add([]byte{joinRefused, 0, 5, 'n', 'o', 'p', 'e', '!'})
	f.Add([]byte{joinAccepted, 0, 0})
	f.Add([]byte{joinAccepted, 0, 4, 1, 2, 3, 4, 1, 0, 1, 0})
	f.Add([]byte{})
	_, self := p2ptest.NewKey(f)
	// A real answer, so that mutations reach the records.
	key, err := member.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	fp, _ := member.FingerprintOf(key.GetPublic())
	inv := &member.Invitation{Key: fp}
	pub, _ := crypto.MarshalPublicKey(key.GetPublic())
	c, raw, err := member.Issue(key, self, "b", nil, time.Now(), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	var answer bytes.Buffer
	answer.Write(append([]byte{joinAccepted}, binary.BigEndian.AppendUint16(nil, uint16(len(pub)))...))
	answer.Write(pub)
	member.WriteRecords(&answer, []member.Member{{Cert: c, Raw: raw}, {Cert: c, Raw: raw}}, nil)
	f.Add(answer.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := readJoined(bytes.NewReader(b), inv, self, "")
		if err == nil && (j.Cert == nil || j.Cert.PeerID != self) {
			t.Fatalf("a join answer taken without this node's certificate: %+v", j)
		}
	})
}
