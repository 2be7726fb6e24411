package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func rtt(ms float64) string {
	switch {
	case ms <= 0:
		return "rtt unknown"
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	default:
		return fmt.Sprintf("%.1fms", ms)
	}
}

// writeJSONLine writes v as one line of JSON, for a stream of results.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
