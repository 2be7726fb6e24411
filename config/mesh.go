package config

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// Mesh is the membership section: the mesh keys whose member certificates
// this node accepts as it accepts a listed peer, and this node's own
// certificate and name. 'mynetwork mesh init' writes it on the first
// admin node, 'mynetwork join' on the others.
type Mesh struct {
	// Name is this node's name in the mesh, the one on its certificate.
	Name string `json:"name"`
	// Trust are the mesh public keys (base64 of libp2p's encoding) whose
	// certificates this node accepts.
	Trust []string `json:"trust"`
	// SigningKey, on an admin node, is the file holding a mesh private
	// key (relative to the config's directory when not absolute).
	SigningKey string `json:"signingKey,omitempty"`
	// Certificate is this node's member certificate (base64), shown to
	// the peers it connects to.
	Certificate string `json:"certificate,omitempty"`
}

// TrustKeys decodes the trusted mesh keys of a valid config.
func (m *Mesh) TrustKeys() ([]crypto.PubKey, error) {
	var out []crypto.PubKey
	for i, s := range m.Trust {
		k, err := ParseMeshPublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("mesh.trust[%d]: %w", i, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// ParseMeshPublicKey decodes a mesh public key as the config holds it.
func ParseMeshPublicKey(s string) (crypto.PubKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not base64: %v", s, err)
	}
	k, err := crypto.UnmarshalPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%q is not a libp2p public key: %v", s, err)
	}
	if k.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("%q is a %s key; a mesh key is Ed25519", s, k.Type())
	}
	return k, nil
}

// MeshPublicKey encodes a mesh public key as the config holds it.
func MeshPublicKey(k crypto.PubKey) (string, error) {
	b, err := crypto.MarshalPublicKey(k)
	if err != nil {
		return "", fmt.Errorf("encode mesh key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// SigningKeyPath is where the mesh private key of the config at
// configPath lives: SigningKey, relative to the config's directory.
func (m *Mesh) SigningKeyPath(configPath string) string {
	if m.SigningKey == "" || filepath.IsAbs(m.SigningKey) {
		return m.SigningKey
	}
	return filepath.Join(filepath.Dir(configPath), m.SigningKey)
}

// MemberFile is where a node keeps the member certificates and
// revocations it has heard: beside the config, as the address book.
func MemberFile(configPath string) string {
	return strings.TrimSuffix(configPath, ".json") + ".members.json"
}

// InviteFile is where an admin node keeps its open invitations.
func InviteFile(configPath string) string {
	return strings.TrimSuffix(configPath, ".json") + ".invites.json"
}

// mesh checks the membership section: a valid name no listed peer has,
// at least one trusted key, each a mesh public key, and a certificate
// in base64 (its content is checked against the trusted keys at start).
func (v *validator) mesh(m *Mesh) {
	switch {
	case m.Name == "":
		v.add("mesh.name", "missing: the node's name in the mesh")
	case !ValidName(m.Name):
		v.add("mesh.name", "%q is not a valid name: use letters, digits and inner dashes, at most 63", m.Name)
	default:
		if j, taken := v.names[m.Name]; taken {
			v.add("mesh.name", "%q is also the name of peers[%d]", m.Name, j)
		}
	}
	if len(m.Trust) == 0 {
		v.add("mesh.trust", "empty: list the mesh public keys this node accepts certificates from")
	}
	for i, s := range m.Trust {
		if _, err := ParseMeshPublicKey(s); err != nil {
			v.add(fmt.Sprintf("mesh.trust[%d]", i), "%v", err)
		}
	}
	if m.Certificate != "" {
		if _, err := base64.StdEncoding.DecodeString(m.Certificate); err != nil {
			v.add("mesh.certificate", "not base64: %v", err)
		}
	}
}
