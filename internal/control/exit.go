package control

import (
	"context"
	"net/http"
)

// ExitNodeRequest is the body of POST /v1/exit-node: the peer to send all
// traffic through, by name, or "" (or "off") for none.
type ExitNodeRequest struct {
	Peer string `json:"peer"`
}

// ExitNodeStatus is the node's exit-node state: the peer it uses (Use,
// with its ID and whether it is connected: while it is not, traffic to
// the internet is dropped) and whether it offers itself to Clients
// (absent: every peer).
type ExitNodeStatus struct {
	Use       string   `json:"use,omitempty"`
	ID        string   `json:"id,omitempty"`
	Connected bool     `json:"connected"`
	AllowLAN  bool     `json:"allowLAN,omitempty"`
	Offer     bool     `json:"offer,omitempty"`
	Clients   []string `json:"clients,omitempty"`
}

// ExitNoder is a Backend that can change its exit node at run time.
type ExitNoder interface {
	SetExitNode(ctx context.Context, req ExitNodeRequest) (ExitNodeStatus, error)
}

// exitRoutes serves POST /v1/exit-node when the backend is an ExitNoder.
func exitRoutes(mux *http.ServeMux, b Backend) {
	e, ok := b.(ExitNoder)
	if !ok {
		return
	}
	mux.HandleFunc("POST /v1/exit-node", func(w http.ResponseWriter, r *http.Request) {
		var req ExitNodeRequest
		if decodeBody(w, r, &req) {
			v, err := e.SetExitNode(r.Context(), req)
			reply(w, v, err)
		}
	})
}

// SetExitNode asks the daemon to use another exit node, or none.
func (c *Client) SetExitNode(ctx context.Context, req ExitNodeRequest) (ExitNodeStatus, error) {
	var out ExitNodeStatus
	err := c.do(ctx, http.MethodPost, "/v1/exit-node", req, &out)
	return out, err
}
