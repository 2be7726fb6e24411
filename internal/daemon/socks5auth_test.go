package daemon

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
)

// socks5Settings saves a config with the userspace section u and returns
// the userspace settings a daemon started with opts would use, and what it
// would log about them.
func socks5Settings(t *testing.T, n *testNode, u *config.Userspace, opts Options) (userspaceSettings, string, error) {
	t.Helper()
	n.cfg.Userspace = u
	if err := n.cfg.Save(n.cfgPath); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opts.ConfigPath, opts.Interface, opts.SocketPath, opts.Userspace = n.cfgPath, "ms0", n.sock, true
	opts.Log = slog.New(slog.NewTextHandler(&log, nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.userspaceSettings()
	if err == nil && s.socks5 != "" {
		d.logSOCKS5(s)
	}
	return s, log.String(), err
}

// TestSOCKS5AuthSettings checks how the config and the flags choose the
// proxy's authentication, and the credentials a node makes for itself.
func TestSOCKS5AuthSettings(t *testing.T) {
	made := regexp.MustCompile(`^[A-Z2-7]{26}$`) // rand.Text: 128 bits
	tests := []struct {
		name     string
		u        *config.Userspace
		opts     Options
		wantUser string // "" for an open or disabled proxy
		fromCfg  bool   // the credentials are the config's
		wantErr  string // with {config} for the config's path
	}{
		{name: "made by default", wantUser: "mynetwork"},
		{name: "made for a non-loopback address too", opts: Options{SOCKS5: "0.0.0.0:1080"}, wantUser: "mynetwork"},
		{name: "the flag's password wins over the config's none", u: &config.Userspace{SOCKS5Auth: "none"}, opts: Options{SOCKS5Auth: "password"}, wantUser: "mynetwork"},
		{name: "the config's", u: &config.Userspace{SOCKS5Username: "me", SOCKS5Password: "p@ss:w/rd"}, wantUser: "me", fromCfg: true},
		{name: "open by the config", u: &config.Userspace{SOCKS5Auth: "none"}},
		{name: "open by the flag", opts: Options{SOCKS5Auth: "none"}},
		{name: "open by the flag on IPv6 loopback", opts: Options{SOCKS5: "[::1]:1080", SOCKS5Auth: "none"}},
		{name: "proxy off", opts: Options{SOCKS5: "off"}},
		{name: "open by the flag off loopback", opts: Options{SOCKS5: "0.0.0.0:1080", SOCKS5Auth: "none"},
			wantErr: "--socks5-auth none: a SOCKS5 proxy on 0.0.0.0:1080, which is not a loopback address, needs a username and password, or anyone who reaches it reaches the mesh as this node"},
		{name: "open by the config off loopback", u: &config.Userspace{SOCKS5Auth: "none"}, opts: Options{SOCKS5: "[::]:1080"},
			wantErr: `{config}: userspace.socks5Auth: "none": a SOCKS5 proxy on [::]:1080, which is not a loopback address, needs a username and password, or anyone who reaches it reaches the mesh as this node`},
		{name: "bad flag", opts: Options{SOCKS5Auth: "yes"}, wantErr: `--socks5-auth "yes": want password or none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, "ms0")
			credsPath := SOCKS5CredentialsPath(n.cfgPath)
			s, logged, err := socks5Settings(t, n, tt.u, tt.opts)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "{config}", n.cfgPath)
				if err == nil || err.Error() != want {
					t.Fatalf("err = %v\nwant %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.username != tt.wantUser {
				t.Errorf("username %q, want %q", s.username, tt.wantUser)
			}
			_, statErr := os.Stat(credsPath)
			switch {
			case tt.wantUser == "" || tt.fromCfg:
				wantCreds := ""
				if tt.fromCfg {
					wantCreds = n.cfgPath
				}
				if s.credentials != wantCreds {
					t.Errorf("credentials in %q, want %q", s.credentials, wantCreds)
				}
				if !errors.Is(statErr, fs.ErrNotExist) {
					t.Errorf("%s made although not needed: %v", credsPath, statErr)
				}
			default:
				if !made.MatchString(s.password) || s.credentials != credsPath || !s.madeCredentials {
					t.Errorf("made %q:%q in %s (%v)", s.username, s.password, s.credentials, s.madeCredentials)
				}
			}
			// The log names the file and the command, never the password.
			switch {
			case s.socks5 == "":
			case tt.wantUser == "":
				if !strings.Contains(logged, "SOCKS5 proxy without authentication: every local user can reach the mesh as this node through it") {
					t.Errorf("no warning of an open proxy in the log:\n%s", logged)
				}
			case strings.Contains(logged, s.password):
				t.Errorf("the password was logged:\n%s", logged)
			case !strings.Contains(logged, "credentials="+s.credentials) || !strings.Contains(logged, `command="mynetwork -i ms0 socks5-url"`):
				t.Errorf("the log names neither the credentials file nor the command:\n%s", logged)
			}
		})
	}
}

// The credentials a node makes are in a 0600 file that later starts read
// again, so that clients set up once keep working.
func TestSOCKS5CredentialsKept(t *testing.T) {
	n := newTestNode(t, "ms0")
	first, _, err := socks5Settings(t, n, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(first.credentials)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v; want mode 0600", st, err)
	}
	again, _, err := socks5Settings(t, n, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.username != first.username || again.password != first.password || again.madeCredentials {
		t.Fatalf("second start: %q:%q (made %v), first %q:%q", again.username, again.password, again.madeCredentials, first.username, first.password)
	}

	os.WriteFile(first.credentials, []byte(`{"username": "mynetwork"}`), 0o600)
	_, _, err = socks5Settings(t, n, nil, Options{})
	want := "SOCKS5 credentials: " + first.credentials + ` is not {"username": ..., "password": ...} (at most 255 bytes each); delete it to make new ones`
	if err == nil || err.Error() != want {
		t.Fatalf("broken file: %v\nwant %s", err, want)
	}
}

func TestSOCKS5URL(t *testing.T) {
	dir := t.TempDir()
	made := dir + "/ms0.socks5.json"
	os.WriteFile(made, []byte(`{"username": "mynetwork", "password": "ABC234"}`), 0o600)
	cfg := dir + "/ms0.json"
	os.WriteFile(cfg, []byte(`{"privateKey": "x", "userspace": {"socks5Username": "me", "socks5Password": "p@ss:w/rd"}}`), 0o600)
	tests := []struct {
		name    string
		u       *control.Userspace
		want    string
		wantErr string
	}{
		{name: "made credentials", u: &control.Userspace{SOCKS5: "127.0.0.1:1080", SOCKS5Credentials: made}, want: "socks5h://mynetwork:ABC234@127.0.0.1:1080"},
		{name: "the config's, escaped", u: &control.Userspace{SOCKS5: "[::1]:1080", SOCKS5Credentials: cfg}, want: "socks5h://me:p%40ss%3Aw%2Frd@[::1]:1080"},
		{name: "open", u: &control.Userspace{SOCKS5: "127.0.0.1:1080"}, want: "socks5h://127.0.0.1:1080"},
		{name: "off", u: &control.Userspace{SOCKS5: "off"}, wantErr: "the SOCKS5 proxy of interface ms0 is off"},
		{name: "kernel mode", wantErr: "interface ms0 runs in kernel mode, without a SOCKS5 proxy (that is 'up --userspace')"},
		{name: "file gone", u: &control.Userspace{SOCKS5: "127.0.0.1:1080", SOCKS5Credentials: dir + "/gone.json"},
			wantErr: "SOCKS5 credentials: open " + dir + "/gone.json: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := "userspace"
			if tt.u == nil {
				mode = "kernel"
			}
			got, err := SOCKS5URL(control.Status{Interface: "ms0", Mode: mode, Userspace: tt.u})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SOCKS5URL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
