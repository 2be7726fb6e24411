// Package member holds what lets a mesh grow without editing every config:
// a mesh key, the member certificates it signs, their verification and the
// revocations that withdraw them. It only defines and checks these; who
// signs, stores and spreads them lives elsewhere.
package member

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// Fingerprint names a mesh key: the SHA-256 of its public key as libp2p
// marshals it. Certificates carry it instead of the key, which a node
// must already trust anyway.
type Fingerprint [32]byte

// String is the fingerprint in lowercase hex.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// GenerateKey makes a new mesh key.
func GenerateKey() (crypto.PrivKey, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate mesh key: %w", err)
	}
	return priv, nil
}

// MarshalKey encodes a mesh key as libp2p encodes a node's own key, so
// that both can be stored the same way.
func MarshalKey(priv crypto.PrivKey) ([]byte, error) {
	if priv.Type() != pb.KeyType_Ed25519 {
		return nil, errNotEd25519
	}
	return crypto.MarshalPrivateKey(priv)
}

// UnmarshalKey decodes what MarshalKey wrote.
func UnmarshalKey(b []byte) (crypto.PrivKey, error) {
	priv, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("decode mesh key: %w", err)
	}
	if priv.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("decode mesh key: %w", errNotEd25519)
	}
	return priv, nil
}

// errNotEd25519: the encodings give a signature exactly 64 bytes, so a
// mesh key of another type could sign nothing that verifies.
var errNotEd25519 = errors.New("a mesh key must be Ed25519")

// FingerprintOf returns the fingerprint of a mesh key's public half.
func FingerprintOf(pub crypto.PubKey) (Fingerprint, error) {
	b, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("fingerprint mesh key: %w", err)
	}
	return sha256.Sum256(b), nil
}
