package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/buildinfo"
)

// logOptions are up's logging flags.
type logOptions struct {
	level   string // debug, info, warn or error
	format  string // text or json
	verbose bool   // -v: the same as --log-level debug
}

func (o *logOptions) addFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log debug details (--log-level debug)")
	fs.StringVar(&o.level, "log-level", "info", "log from this level up: debug, info, warn or error")
	fs.StringVar(&o.format, "log-format", "text", "log lines as text (key=value) or json (one object a line)")
}

// logger makes the daemon's logger on w, or says which flag is wrong.
func (o logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(o.level) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", o.level)
	}
	if o.verbose {
		level = min(level, slog.LevelDebug)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(o.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", o.format)
}

// start makes up's logger and logs its first line: which build runs.
func (o logOptions) start(w io.Writer) (*slog.Logger, error) {
	log, err := o.logger(w)
	if err != nil {
		return nil, err
	}
	i := buildinfo.Get()
	log.Info("mynetwork starting", "version", i.Version, "commit", i.Commit, "modified", i.Modified, "go", i.Go)
	return log, nil
}
