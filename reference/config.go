package reference

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// FileConfig is the optional YAML configuration of `xmppcheck serve`
// (--config). Every field is optional; command-line flags override it.
// Relative paths are relative to the file.
//
//	domain: example.org
//	policy: policies/jabberx.yaml
//	data: /var/lib/xmppcheck
//	key_file: /etc/xmppcheck/at-rest.key
//	test_clock: false
//	listen:
//	  c2s: 0.0.0.0:5222
//	  c2s_tls: 0.0.0.0:5223
//	  s2s: 0.0.0.0:5269
//	  http: 127.0.0.1:5280
//	  metrics: 127.0.0.1:9090
//	tls:
//	  cert: /etc/xmppcheck/fullchain.pem
//	  key: /etc/xmppcheck/privkey.pem
//	limits:
//	  max_stanza_size: 262144
//	  auth_timeout: 30s
//	  handshake_timeout: 10s      # stream header, STARTTLS, TLS
//	  max_conns_per_addr: 100     # c2s, direct TLS, HTTPS upload, metrics
//	  max_s2s_conns_per_addr: 10
//	  max_preauth: 0              # 0: half the open-file limit
//	log:
//	  format: text   # or json
//	  level: info    # debug, info, warn, error
type FileConfig struct {
	Domain    string `yaml:"domain"`
	Policy    string `yaml:"policy"`
	Data      string `yaml:"data"`
	KeyFile   string `yaml:"key_file"`
	TestClock bool   `yaml:"test_clock"`
	Listen    struct {
		C2S     *string `yaml:"c2s"`
		C2STLS  *string `yaml:"c2s_tls"`
		S2S     string  `yaml:"s2s"`
		HTTP    string  `yaml:"http"`
		Metrics string  `yaml:"metrics"`
	} `yaml:"listen"`
	TLS struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Limits Limits `yaml:"limits"`
	Log    struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
}

// LoadConfig reads a YAML configuration file; unknown keys are errors.
func LoadConfig(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reference: config: %w", err)
	}
	var fc FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("reference: config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	rel(&fc.Policy)
	rel(&fc.Data)
	rel(&fc.KeyFile)
	rel(&fc.TLS.Cert)
	rel(&fc.TLS.Key)
	if (fc.TLS.Cert == "") != (fc.TLS.Key == "") {
		return nil, fmt.Errorf("reference: config %s: tls needs both cert and key", path)
	}
	switch fc.Log.Format {
	case "", "text", "json":
	default:
		return nil, fmt.Errorf("reference: config %s: log.format must be text or json", path)
	}
	return &fc, nil
}

// Options returns the options the file sets (data, key file and policy are
// left to the caller).
func (fc *FileConfig) Options() ([]Option, error) {
	var opts []Option
	if fc.Domain != "" {
		opts = append(opts, WithDomain(fc.Domain))
	}
	if fc.Listen.C2S != nil {
		opts = append(opts, WithC2SAddr(*fc.Listen.C2S))
	}
	if fc.Listen.C2STLS != nil {
		opts = append(opts, WithC2STLSAddr(*fc.Listen.C2STLS))
	}
	if fc.Listen.S2S != "" {
		opts = append(opts, WithS2SAddr(fc.Listen.S2S))
	}
	if fc.Listen.HTTP != "" {
		opts = append(opts, WithHTTPAddr(fc.Listen.HTTP))
	}
	if fc.Listen.Metrics != "" {
		opts = append(opts, WithMetricsAddr(fc.Listen.Metrics))
	}
	if fc.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(fc.TLS.Cert, fc.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("reference: config: certificate: %w", err)
		}
		opts = append(opts, WithTLSCertificate(cert))
	}
	if fc.TestClock {
		opts = append(opts, WithTestClock())
	}
	opts = append(opts, WithLimits(fc.Limits))
	return opts, nil
}
