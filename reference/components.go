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
// are theirs alone come from the server's options here.
var (
	newS2S    host.NewComponent = startS2S
	newUpload host.NewComponent = startUpload
)

func startS2S(h host.Host, addr string) (host.Component, error) {
	cfg := &h.(*hostImpl).s.cfg
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
	c, err := s2s.NewComponent(h, addr, opts...)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func startUpload(h host.Host, addr string) (host.Component, error) {
	cfg := &h.(*hostImpl).s.cfg
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
	c, err := upload.NewComponent(h, addr, filepath.Join(cfg.dataDir, "upload"), copts, opts...)
	if err != nil {
		return nil, err
	}
	return c, nil
}
