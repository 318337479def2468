package reference

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/clock"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"github.com/xmppcheck/xmppcheck/spec"
)

// hostImpl is the Server as components see it.
type hostImpl struct{ s *Server }

var _ host.Host = (*hostImpl)(nil)

func (h *hostImpl) Domain() string              { return h.s.cfg.domain }
func (h *hostImpl) Logger() *slog.Logger        { return h.s.log }
func (h *hostImpl) Fail(what string, err error) { h.s.Fail(what, err) }
func (h *hostImpl) Listen(name, addr string, preAuth bool) (net.Listener, error) {
	perAddr := h.s.perAddr
	if name == "s2s" {
		perAddr = h.s.cfg.limits.MaxS2SConnsPerAddr
		if perAddr == 0 {
			perAddr = 10
		}
	}
	return h.s.listen(name, addr, perAddr, preAuth)
}
func (h *hostImpl) Clock() clock.Clock        { return h.s.clock }
func (h *hostImpl) Key(purpose string) []byte { return store.DeriveKey(h.s.key, "component "+purpose) }
func (h *hostImpl) Policy() *spec.Policy      { return h.s.pol }
func (h *hostImpl) TLSConfig(min uint16) *tls.Config {
	return h.s.tlsConfig(min, nil)
}
func (h *hostImpl) HandleIQ(addr, ns, local string, f host.IQHandler) {
	h.s.router.HandleIQ(addr, ns, local, f)
}
func (h *hostImpl) AddService(addr string)  { h.s.router.AddService(addr) }
func (h *hostImpl) AddItem(it host.Item)    { h.s.router.AddItem(it) }
func (h *hostImpl) SetRemote(r host.Remote) { h.s.router.SetRemote(r) }
func (h *hostImpl) DeliverRemote(ctx context.Context, el *wire.Element) error {
	return h.s.router.DeliverRemote(ctx, el)
}
func (h *hostImpl) Every(name string, interval time.Duration, job func(ctx context.Context, now time.Time)) {
	h.s.everyLocked(name, interval, job)
}
func (h *hostImpl) OnAccountRemoved(f func(ctx context.Context, user string) error) {
	h.s.router.OnAccountRemoved(f)
}
