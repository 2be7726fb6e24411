package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "d9eff1c0"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name       string
		main       string
		settings   []debug.BuildSetting
		ldVersion  string
		ldCommit   string
		want       Info
		wantString string
	}{
		{"make build", "(devel)", vcs, "v0.4.0-3-gd9eff1c-dirty", "",
			Info{Version: "v0.4.0-3-gd9eff1c-dirty", Commit: "d9eff1c0", Modified: true, Go: "go1.26.8"},
			"mynetwork v0.4.0-3-gd9eff1c-dirty (commit d9eff1c0, modified), go1.26.8"},
		{"go build in a checkout", "v0.0.0-20250101000000-d9eff1c0", vcs[:1], "", "",
			Info{Version: "v0.0.0-20250101000000-d9eff1c0", Commit: "d9eff1c0", Go: "go1.26.8"},
			"mynetwork v0.0.0-20250101000000-d9eff1c0 (commit d9eff1c0), go1.26.8"},
		{"make build in a worktree", "(devel)", nil, "d9eff1c-dirty", "d9eff1c0",
			Info{Version: "d9eff1c-dirty", Commit: "d9eff1c0", Go: "go1.26.8"},
			"mynetwork d9eff1c-dirty (commit d9eff1c0), go1.26.8"},
		{"no vcs", "", nil, "", "",
			Info{Version: "unknown", Go: "go1.26.8"},
			"mynetwork unknown, go1.26.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: tc.main}, Settings: tc.settings}
			got := fromBuildInfo(bi, tc.ldVersion, tc.ldCommit)
			if got != tc.want || got.String() != tc.wantString {
				t.Errorf("got %+v %q, want %+v %q", got, got.String(), tc.want, tc.wantString)
			}
		})
	}
}

func TestGet(t *testing.T) {
	if i := Get(); i.Version == "" || i.Go == "" {
		t.Errorf("Get() = %+v", i)
	}
}
