package control

import (
	"context"
	"net/http"
	"time"
)

// InviteRequest is the body of POST /v1/invite: an invitation for a new
// member called Name, allowed to serve Routes, open for TTL (0: the
// daemon's default, 24 h).
type InviteRequest struct {
	Name   string        `json:"name"`
	Routes []string      `json:"routes,omitempty"`
	TTL    time.Duration `json:"ttl,omitempty"`
}

// Invitation is the answer to POST /v1/invite.
type Invitation struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// RevokeRequest is the body of POST /v1/revoke: the member to revoke, by
// name or peer ID.
type RevokeRequest struct {
	Member string `json:"member"`
}

// Revoked is the answer to POST /v1/revoke.
type Revoked struct {
	Name   string `json:"name"`
	PeerID string `json:"peerID"`
}

// Admin is a Backend that can admit and revoke members.
type Admin interface {
	Invite(ctx context.Context, req InviteRequest) (Invitation, error)
	Revoke(ctx context.Context, req RevokeRequest) (Revoked, error)
}

// memberRoutes serves POST /v1/invite and /v1/revoke when the backend
// is an Admin.
func memberRoutes(mux *http.ServeMux, b Backend) {
	a, ok := b.(Admin)
	if !ok {
		return
	}
	mux.HandleFunc("POST /v1/invite", func(w http.ResponseWriter, r *http.Request) {
		var req InviteRequest
		if decodeBody(w, r, &req) {
			v, err := a.Invite(r.Context(), req)
			reply(w, v, err)
		}
	})
	mux.HandleFunc("POST /v1/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req RevokeRequest
		if decodeBody(w, r, &req) {
			v, err := a.Revoke(r.Context(), req)
			reply(w, v, err)
		}
	})
}

// Invite asks an admin node's daemon for an invitation token.
func (c *Client) Invite(ctx context.Context, req InviteRequest) (Invitation, error) {
	var out Invitation
	err := c.do(ctx, http.MethodPost, "/v1/invite", req, &out)
	return out, err
}

// Revoke asks an admin node's daemon to revoke a member.
func (c *Client) Revoke(ctx context.Context, req RevokeRequest) (Revoked, error) {
	var out Revoked
	err := c.do(ctx, http.MethodPost, "/v1/revoke", req, &out)
	return out, err
}
