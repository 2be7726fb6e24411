package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

type apiError struct {
	Error string `json:"error"`
}

// Handler serves the API over b.
func Handler(b Backend) http.Handler { return NewServer(b).srv.Handler }

func (s *Server) handler() http.Handler {
	b := s.backend
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/dial", s.handleDial)
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
		var req RouteRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"bad request body: " + err.Error()})
			return
		}
		v, err := b.AddRoute(r.Context(), req)
		reply(w, v, err)
	})
	mux.HandleFunc("DELETE /v1/routes", func(w http.ResponseWriter, r *http.Request) {
		persist, _ := strconv.ParseBool(r.URL.Query().Get("persist"))
		req := RouteRequest{Net: r.URL.Query().Get("net"), Persist: persist}
		err := b.DelRoute(r.Context(), req)
		reply(w, struct{}{}, err)
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// SocketPath is where the daemon for iface listens: /run/mynetwork as root,
// else $XDG_RUNTIME_DIR/mynetwork, else a 0700 folder of the user's in the
// temporary directory. One socket per interface name.
func SocketPath(iface string) string {
	return filepath.Join(socketDir(), iface+".sock")
}

func socketDir() string {
	if os.Geteuid() == 0 {
		return "/run/mynetwork"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "mynetwork")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("mynetwork-%d", os.Getuid()))
}

// ErrRunning means another daemon already serves the socket.
var ErrRunning = errors.New("already running")

// Listen claims the control socket for an interface. A live socket means
// another daemon runs on that interface (ErrRunning); a stale one, left by a
// crash, is replaced. The socket is mode 0600.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket folder: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a mynetwork daemon is %w on %s", ErrRunning, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
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
