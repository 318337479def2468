package reference

import "github.com/xmppcheck/xmppcheck/reference/host"

// Components started when their address option is set. The federation
// work (packages reference/s2s and reference/upload) sets these; while nil,
// WithS2SAddr or WithHTTPAddr makes Start fail with a clear error.
var (
	newS2S    host.NewComponent
	newUpload host.NewComponent
)
