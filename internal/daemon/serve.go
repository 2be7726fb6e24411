package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// httpLoop is an HTTP server's Serve loop, run under the daemon's errgroup
// (the control API's, the metrics'), and its shutdown.
type httpLoop struct {
	srv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	}
	done chan struct{} // closed when Serve has returned
}

// serve runs srv on ln under loops; what names it when it fails.
func (l *httpLoop) serve(loops *errgroup.Group, ln net.Listener, what string) {
	l.done = make(chan struct{})
	loops.Go(func() error {
		defer close(l.done)
		if err := l.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s stopped: %w", what, err)
		}
		return nil
	})
}

// shutdown gives requests in flight 2 s to finish, so that a stuck client
// cannot hold up the daemon's, and waits for Serve to return.
func (l *httpLoop) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := l.srv.Shutdown(ctx)
	<-l.done
	return err
}
