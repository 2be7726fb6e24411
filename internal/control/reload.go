package control

import (
	"context"
	"net/http"
)

// ReloadResult is the answer to POST /v1/reload: what the reload changed.
type ReloadResult struct {
	Peers   int      `json:"peers"`             // configured peers now
	Added   []string `json:"added,omitempty"`   // peers' names
	Removed []string `json:"removed,omitempty"` // peers' names
	Renamed []string `json:"renamed,omitempty"` // "old -> new"
	// Restart names the settings that changed in the file but apply only
	// at the next start (listenAddresses, mtu, userspace, ...).
	Restart []string `json:"restart,omitempty"`
}

// Reloader is a Backend that re-reads its config file on POST /v1/reload.
type Reloader interface {
	Reload(ctx context.Context) (ReloadResult, error)
}

// reloadRoute serves POST /v1/reload when the backend can reload.
func reloadRoute(mux *http.ServeMux, b Backend) {
	r, ok := b.(Reloader)
	if !ok {
		return
	}
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, req *http.Request) {
		v, err := r.Reload(req.Context())
		reply(w, v, err)
	})
}

// Reload asks the daemon to re-read its config file.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var out ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", nil, &out)
	return out, err
}
