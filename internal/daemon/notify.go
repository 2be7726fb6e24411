package daemon

import sd "github.com/coreos/go-systemd/v22/daemon"

// notify tells systemd how the daemon stands when it runs as a Type=notify
// service: READY=1 once the interface is up and the control API answers (so
// units ordered after mynetwork@IFACE find the mesh there), STOPPING=1 when
// shutdown begins. A reload sends RELOADING=1, then READY=1, through it too.
// Without NOTIFY_SOCKET, as when run by hand, it does nothing. NOTIFY_SOCKET
// stays set: the daemon notifies more than once.
func (d *Daemon) notify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		d.log.Warn("cannot tell systemd the daemon's state", "state", state, "err", err)
	}
}
