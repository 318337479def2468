package dockerenv

import (
	"net/netip"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
)

// WithLoopbackPorts exposes the container ports ("5222/tcp" or "5222") and
// publishes each on an ephemeral port of 127.0.0.1 only, never on every
// interface as testcontainers-go does by default. Read the mapped address
// with the container's MappedPort (the host is 127.0.0.1 after Setup).
func WithLoopbackPorts(ports ...string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		if err := testcontainers.WithExposedPorts(ports...)(req); err != nil {
			return err
		}
		loopback := netip.MustParseAddr("127.0.0.1")
		var parsed []network.Port
		for _, p := range ports {
			np, err := network.ParsePort(p)
			if err != nil {
				return err
			}
			parsed = append(parsed, np)
		}
		return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if hc.PortBindings == nil {
				hc.PortBindings = network.PortMap{}
			}
			for _, p := range parsed {
				hc.PortBindings[p] = []network.PortBinding{{HostIP: loopback, HostPort: "0"}}
			}
		})(req)
	}
}
