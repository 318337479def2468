package reference

import (
	"path/filepath"

	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/s2s"
	"github.com/xmppcheck/xmppcheck/reference/upload"
)

// Components started when their address option is set: federation
// (WithS2SAddr, package s2s) and HTTP File Upload (WithHTTPAddr, package
// upload). They see the server through host.Host; the few settings that
// are theirs alone are given to their factory here, as options made from
// the server's configuration.

// s2sComponent returns the factory of the s2s component with the settings
// of cfg that are its own: pinned peers, static-only routing and the
// handshake timeout.
func s2sComponent(cfg *config) host.NewComponent {
	var opts []s2s.Option
	for domain, a := range cfg.s2sHosts {
		opts = append(opts, s2s.WithHost(domain, a))
	}
	if cfg.s2sStaticOnly {
		opts = append(opts, s2s.WithStaticHostsOnly())
	}
	if d := cfg.limits.HandshakeTimeout; d > 0 {
		opts = append(opts, s2s.WithHandshakeTimeout(d))
	}
	return func(h host.Host, addr string) (host.Component, error) {
		c, err := s2s.NewComponent(h, addr, opts...)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// uploadComponent returns the factory of the upload component with the
// settings of cfg that are its own: its directory under the data
// directory, the public URL, the largest file and the per-user quota.
func uploadComponent(cfg *config) host.NewComponent {
	dir := filepath.Join(cfg.dataDir, "upload")
	var copts []upload.ComponentOption
	if cfg.uploadURL != "" {
		copts = append(copts, upload.WithPublicURL(cfg.uploadURL))
	}
	var opts []upload.Option
	if cfg.uploadMaxSize > 0 {
		opts = append(opts, upload.WithMaxFileSize(cfg.uploadMaxSize))
	}
	if cfg.uploadQuota > 0 {
		opts = append(opts, upload.WithQuota(cfg.uploadQuota))
	}
	return func(h host.Host, addr string) (host.Component, error) {
		c, err := upload.NewComponent(h, addr, dir, copts, opts...)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
