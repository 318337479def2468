package reference

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/xmppcheck/xmppcheck/reference/s2s"
)

// FileConfig is the optional YAML configuration of `xmppcheck serve`
// (--config). Every field is optional; command-line flags override it
// (MergeServe).
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

// Flag is a command-line setting of `xmppcheck serve`: its value (the
// flag's default when the user did not give it) and whether the user gave
// it.
type Flag struct {
	Value string
	Given bool
}

// ServeFlags are the command-line settings of `xmppcheck serve`. The Flag
// fields are those the --config file also sets; the others exist only as
// flags.
type ServeFlags struct {
	Policy, Data, KeyFile, Domain   Flag
	C2S, C2STLS, S2S, HTTP, Metrics Flag
	LogFormat, LogLevel             Flag
	S2SHosts                        []string // DOMAIN=HOST:PORT, checked by Options
	S2SStaticOnly                   bool
	UploadURL                       string
	UploadMaxSize, UploadQuota      int64 // bytes; 0 = the upload package's default
	TestClock                       bool
}

// ServeConfig is the configuration of `xmppcheck serve` once the --config
// file and the flags are merged: every value final.
type ServeConfig struct {
	Policy, Data, KeyFile, Domain   string
	C2S, C2STLS, S2S, HTTP, Metrics string // "" disables a listener
	LogFormat, LogLevel             string
	Cert, CertKey                   string // PEM files; both "" = the self-signed certificate
	Limits                          Limits
	S2SHosts                        []string
	S2SStaticOnly                   bool
	UploadURL                       string
	UploadMaxSize, UploadQuota      int64
	TestClock                       bool
}

// MergeServe merges the configuration file fc (nil when there is none)
// with the flags: a flag the user gave wins, then the file's value, then
// the flag's default. The file's empty strings mean "not set" except for
// the c2s listeners, where an explicit "" disables the listener.
func MergeServe(fc *FileConfig, fl ServeFlags) ServeConfig {
	pick := func(f Flag, file string) string {
		if f.Given || file == "" {
			return f.Value
		}
		return file
	}
	pickAddr := func(f Flag, file *string) string {
		if f.Given || file == nil {
			return f.Value
		}
		return *file
	}
	if fc == nil {
		fc = &FileConfig{}
	}
	return ServeConfig{
		Policy:        pick(fl.Policy, fc.Policy),
		Data:          pick(fl.Data, fc.Data),
		KeyFile:       pick(fl.KeyFile, fc.KeyFile),
		Domain:        pick(fl.Domain, fc.Domain),
		C2S:           pickAddr(fl.C2S, fc.Listen.C2S),
		C2STLS:        pickAddr(fl.C2STLS, fc.Listen.C2STLS),
		S2S:           pick(fl.S2S, fc.Listen.S2S),
		HTTP:          pick(fl.HTTP, fc.Listen.HTTP),
		Metrics:       pick(fl.Metrics, fc.Listen.Metrics),
		LogFormat:     pick(fl.LogFormat, fc.Log.Format),
		LogLevel:      pick(fl.LogLevel, fc.Log.Level),
		Cert:          fc.TLS.Cert,
		CertKey:       fc.TLS.Key,
		Limits:        fc.Limits,
		S2SHosts:      fl.S2SHosts,
		S2SStaticOnly: fl.S2SStaticOnly,
		UploadURL:     fl.UploadURL,
		UploadMaxSize: fl.UploadMaxSize,
		UploadQuota:   fl.UploadQuota,
		TestClock:     fl.TestClock || fc.TestClock,
	}
}

// Options returns the options of New for c, all but the policy and the
// logger. It loads the certificate and checks the s2s host mappings.
func (c ServeConfig) Options() ([]Option, error) {
	opts := []Option{WithDataDir(c.Data), WithKeyFile(c.KeyFile), WithDomain(c.Domain),
		WithC2SAddr(c.C2S), WithC2STLSAddr(c.C2STLS), WithS2SAddr(c.S2S), WithHTTPAddr(c.HTTP),
		WithMetricsAddr(c.Metrics), WithLimits(c.Limits)}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.CertKey)
		if err != nil {
			return nil, fmt.Errorf("reference: config: certificate: %w", err)
		}
		opts = append(opts, WithTLSCertificate(cert))
	}
	for _, hm := range c.S2SHosts {
		d, a, err := s2s.ParseHost(hm)
		if err != nil {
			return nil, fmt.Errorf("--s2s-host: %w", err)
		}
		opts = append(opts, WithS2SHost(d, a))
	}
	if c.S2SStaticOnly {
		opts = append(opts, WithS2SStaticHostsOnly())
	}
	if c.UploadURL != "" {
		opts = append(opts, WithUploadURL(c.UploadURL))
	}
	if c.UploadMaxSize > 0 || c.UploadQuota > 0 {
		opts = append(opts, WithUploadLimits(c.UploadMaxSize, c.UploadQuota))
	}
	if c.TestClock {
		opts = append(opts, WithTestClock())
	}
	return opts, nil
}
