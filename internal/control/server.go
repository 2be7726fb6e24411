package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxRequestBody bounds the body that POST /v1/routes reads. A
// RouteRequest is a few hundred bytes at most; without a bound the JSON
// decoder would buffer whatever a local client sends.
const maxRequestBody = 64 << 10

type apiError struct {
	Error string `json:"error"`
}

// Handler serves the API over b.
func Handler(b Backend) http.Handler { return NewServer(b).srv.Handler }

func (s *Server) handler() http.Handler {
	b := s.backend
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/dial", s.handleDial)
	reloadRoute(mux, b)
	memberRoutes(mux, b)
	exitRoutes(mux, b)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Status(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Peers(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/routes", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Routes(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("POST /v1/routes", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		var req RouteRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			failBody(w, err)
			return
		}
		v, err := b.AddRoute(r.Context(), req)
		reply(w, v, err)
	})
	mux.HandleFunc("POST /v1/ping", s.handlePing)
	mux.HandleFunc("DELETE /v1/routes", func(w http.ResponseWriter, r *http.Request) {
		persist, _ := strconv.ParseBool(r.URL.Query().Get("persist"))
		req := RouteRequest{Net: r.URL.Query().Get("net"), Persist: persist}
		err := b.DelRoute(r.Context(), req)
		reply(w, struct{}{}, err)
	})
	return mux
}

// failBody answers a request body that could not be read: too large (413)
// or not what the endpoint takes (400).
func failBody(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("request body is larger than %d bytes", maxRequestBody)})
		return
	}
	fail(w, Errorf(ErrBadRequest, "bad request body: %w", err))
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Server serves the API on a listener until Shutdown.
type Server struct {
	srv     *http.Server
	backend Backend

	mu      sync.Mutex
	tunnels map[net.Conn]struct{} // connections switched by /v1/dial
	closing bool
	wg      sync.WaitGroup
}

// NewServer returns a server for b.
func NewServer(b Backend) *Server {
	s := &Server{backend: b, tunnels: make(map[net.Conn]struct{})}
	s.srv = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	return s
}

// Serve serves ln until Shutdown; it returns http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops the server, closing its listener (which removes the
// socket) and every connection switched by /v1/dial.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.mu.Lock()
	s.closing = true
	for c := range s.tunnels {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
