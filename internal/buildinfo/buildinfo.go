// Package buildinfo says which build of Mynetwork is running: its version,
// the commit it was built from and the Go that built it, read from the
// binary's own build info.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Version is set by the Makefile from 'git describe'
// (-ldflags "-X github.com/mynetwork/mynetwork/internal/buildinfo.Version=...");
// a plain 'go build' leaves it empty and the main module's version is used.
var Version string

// Commit is set by the Makefile from 'git rev-parse HEAD', for builds whose
// build info has no vcs.revision: Go stamps none in a git worktree (its
// .git is a file) or under -buildvcs=false.
var Commit string

// Info is one build's identity.
type Info struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`   // vcs.revision, when built in a git checkout
	Modified bool   `json:"modified,omitempty"` // the checkout had uncommitted changes
	Go       string `json:"go"`
}

// Get reads the running binary's build info.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: orUnknown(Version), Commit: Commit, Go: "unknown"}
	}
	return fromBuildInfo(bi, Version, Commit)
}

// fromBuildInfo is Get on given build info and -ldflags values.
func fromBuildInfo(bi *debug.BuildInfo, ldVersion, ldCommit string) Info {
	info := Info{Version: ldVersion, Commit: ldCommit, Go: bi.GoVersion}
	if info.Version == "" {
		info.Version = bi.Main.Version // "(devel)" when go build had no tag to go by
	}
	info.Version = orUnknown(info.Version)
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

// String is the version in a line, as 'mynetwork version' prints it.
func (i Info) String() string {
	s := "mynetwork " + i.Version
	if i.Commit != "" {
		commit := i.Commit
		if i.Modified {
			commit += ", modified"
		}
		s += fmt.Sprintf(" (commit %s)", commit)
	}
	return s + ", " + i.Go
}
