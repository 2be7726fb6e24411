package control

import (
	"context"
	"encoding/json"
	"net/http"
)

// PingRequest asks the daemon to ping a configured peer once, over the
// connection its packets use.
type PingRequest struct {
	// Peer is a peer's name (also as name.mynetwork), its peer ID, or an
	// IP address on the mesh: a peer's own or one routed to it.
	Peer string `json:"peer"`
	// TimeoutMillis bounds the wait for the answer; 0 means the daemon's
	// own (5 s), which also caps it.
	TimeoutMillis int64 `json:"timeoutMs,omitempty"`
}

// PingReply is one answered ping: who answered, over which connection, and
// how long it took.
type PingReply struct {
	Name      string  `json:"name"`
	ID        string  `json:"id"`
	IPv4      string  `json:"ipv4"`
	Path      string  `json:"path"`            // "lan", "direct" or "relay"
	Relay     string  `json:"relay,omitempty"` // on "relay": the relay's name or peer ID
	Transport string  `json:"transport"`       // "tcp" or "quic" (to the relay, on "relay")
	Addr      string  `json:"addr"`            // remote multiaddr of the connection
	RTTMillis float64 `json:"rttMs"`
}

// handlePing answers POST /v1/ping. A ping the peer did not answer, or
// could not be sent, is the mesh's failure: 502, as a failed dial.
func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	var req PingRequest
	if !decodeBody(w, r, &req) {
		return
	}
	v, err := s.backend.Ping(r.Context(), req)
	if err != nil {
		writeJSON(w, statusOf(err, http.StatusBadGateway), apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// decodeBody reads a bounded JSON request body into v, or answers the
// error and reports false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		failBody(w, err)
		return false
	}
	return true
}

// Ping pings a peer once.
func (c *Client) Ping(ctx context.Context, req PingRequest) (PingReply, error) {
	var p PingReply
	return p, c.do(ctx, http.MethodPost, "/v1/ping", req, &p)
}
