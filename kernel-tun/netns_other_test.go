//go:build !linux

package kerneltun

// Elsewhere the tests make no interfaces and run in this process.
func runInOwnNetns() (int, bool) { return 0, false }
