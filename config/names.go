package config

import "strings"

// MeshDomain is the mesh's DNS domain. .internal is reserved for private
// use and can never be bought, so no name under it belongs to anyone else.
const MeshDomain = "mynetwork.internal"

// ShortMeshDomain is the suffix SOCKS5 and nc have taken since the start;
// DNS answers it too.
const ShortMeshDomain = "mynetwork"

// HostLabel is the node name that host asks for, in lower case: host
// without the final dot and the mesh's domain. It is false for a host with
// more labels than one left: no mesh name has a dot. The config's checks
// and every place that takes a name at run time read names this one way.
func HostLabel(host string) (string, bool) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, suffix := range []string{"." + MeshDomain, "." + ShortMeshDomain} {
		if s, found := strings.CutSuffix(h, suffix); found {
			h = s
			break
		}
	}
	if h == "" || strings.Contains(h, ".") {
		return "", false
	}
	return h, true
}
