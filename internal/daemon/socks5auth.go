package daemon

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
)

// socks5User is the username of the credentials a node makes for itself.
const socks5User = "mynetwork"

// socks5Creds is the file a node keeps the SOCKS5 credentials it made in.
type socks5Creds struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// SOCKS5CredentialsPath is where a node whose config sets no SOCKS5
// credentials keeps the ones it made: beside the config, as the address
// book is, so that two nodes on one machine never share them.
func SOCKS5CredentialsPath(configPath string) string {
	return strings.TrimSuffix(configPath, ".json") + ".socks5.json"
}

// loadOrMakeSOCKS5Creds reads the credentials file at path or, when there
// is none, makes one: the username "mynetwork" and a password of 128
// random bits (26 base32 letters and digits, safe in a URL), written
// atomically with mode 0600. Later starts read the
// same file, so that clients set up once keep working.
func loadOrMakeSOCKS5Creds(path string, log *slog.Logger) (c socks5Creds, made bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &c); err != nil || c.Username == "" || c.Password == "" ||
			len(c.Username) > 255 || len(c.Password) > 255 {
			return c, false, fmt.Errorf("SOCKS5 credentials: %s is not {\"username\": ..., \"password\": ...} (at most 255 bytes each); delete it to make new ones", path)
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			log.Warn("the SOCKS5 credentials file holds a password but others can read it; run chmod 600", "file", path, "mode", st.Mode().Perm())
		}
		return c, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return c, false, fmt.Errorf("SOCKS5 credentials: %w", err)
	}
	c = socks5Creds{Username: socks5User, Password: rand.Text()} // 128 bits, base32
	out, err := json.MarshalIndent(c, "", "  ")
	if err == nil {
		err = config.WriteFileAtomic(path, append(out, '\n'), 0o600)
	}
	if err != nil {
		return c, false, fmt.Errorf("SOCKS5 credentials: %w (set userspace.socks5Username and socks5Password in the config instead)", err)
	}
	return c, true, nil
}

// ReadSOCKS5Credentials returns the SOCKS5 username and password kept in
// the file at path: a credentials file the node made, or a config file
// that sets userspace.socks5Username and socks5Password. Status names the
// file; reading it takes the rights of its owner.
func ReadSOCKS5Credentials(path string) (user, pass string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("SOCKS5 credentials: %w", err)
	}
	var f struct {
		socks5Creds
		Userspace *config.Userspace `json:"userspace"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", "", fmt.Errorf("SOCKS5 credentials: %s: %w", path, err)
	}
	if f.Username == "" && f.Userspace != nil {
		f.Username, f.Password = f.Userspace.SOCKS5Username, f.Userspace.SOCKS5Password
	}
	if f.Username == "" || f.Password == "" {
		return "", "", fmt.Errorf("SOCKS5 credentials: %s holds no username and password", path)
	}
	return f.Username, f.Password, nil
}

// absPath is path made absolute, for status, whose reader may run in
// another folder; path as it is if that fails.
func absPath(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

// SOCKS5URL is the URL a client gives its SOCKS5 proxy setting to reach
// the mesh through the node whose status st is: socks5h://ADDR, with the
// username and password when the proxy needs them (read from the file
// status names, so with the rights of the caller). socks5h, because peer
// names resolve only inside the proxy.
func SOCKS5URL(st control.Status) (string, error) {
	u := st.Userspace
	switch {
	case u == nil:
		return "", fmt.Errorf("interface %s runs in %s mode, without a SOCKS5 proxy (that is 'up --userspace')", st.Interface, st.Mode)
	case u.SOCKS5 == "off":
		return "", fmt.Errorf("the SOCKS5 proxy of interface %s is off", st.Interface)
	}
	proxy := url.URL{Scheme: "socks5h", Host: u.SOCKS5}
	if u.SOCKS5Credentials != "" {
		user, pass, err := ReadSOCKS5Credentials(u.SOCKS5Credentials)
		if err != nil {
			return "", err
		}
		proxy.User = url.UserPassword(user, pass)
	}
	return proxy.String(), nil
}
