package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/mynetwork/mynetwork/config"
)

// metricsServer serves Prometheus metrics over HTTP on a loopback address
// (up --metrics, the config's "metrics"): the node's counters, libp2p's
// own metrics (registered by the node on the same registry) and the Go
// runtime's. The registry is the daemon's own, never the process-wide
// default, so nothing else in the process shows up there by accident.
type metricsServer struct {
	d     *Daemon
	loops *errgroup.Group
	http  httpLoop
}

func (c *metricsServer) Start(context.Context) error {
	d := c.d
	reg := d.metrics
	err := errors.Join(
		reg.Register(&meshCollector{eng: &d.eng.Counters, refused: &d.node.Transport().Refused, peers: d.peerSamples}),
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
	if d.members != nil {
		err = errors.Join(err, reg.Register(membersCollector{d}))
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	ln, err := net.Listen("tcp", d.metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics on %s: %w (choose another with --metrics ADDR, or --metrics off)", d.metricsAddr, err)
	}
	c.http.srv = &http.Server{Handler: metricsHandler(reg), ReadHeaderTimeout: 5 * time.Second}
	c.http.serve(c.loops, ln, "metrics server")
	d.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// setMetrics settles where metrics are served: --metrics, else the
// config's "metrics", checked alike.
func (d *Daemon) setMetrics() error {
	addr := d.cfg.Metrics
	switch d.opts.Metrics {
	case "":
	case "off":
		addr = ""
	default:
		if err := config.CheckMetrics(d.opts.Metrics); err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		addr = d.opts.Metrics
	}
	if addr != "" {
		d.metricsAddr, d.metrics = addr, prometheus.NewRegistry()
	}
	return nil
}

// libp2pMetrics is where libp2p registers its metrics: nil (none) unless
// metrics are served. An interface holding a nil *Registry would not be nil.
func (d *Daemon) libp2pMetrics() prometheus.Registerer {
	if d.metrics == nil {
		return nil
	}
	return d.metrics
}

// metricsHandler serves reg at /metrics. Scrapes beyond 4 at a time are
// answered 503: a local client in a loop cannot make the daemon gather
// without bound.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4}))
	return mux
}

// Close gives a scrape in flight 2 s to finish.
func (c *metricsServer) Close() error { return c.http.shutdown() }
