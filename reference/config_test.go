package reference

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaults are the serve flags as given to MergeServe when the user gave
// none of them.
func defaults() ServeFlags {
	return ServeFlags{
		Data: Flag{Value: "xmppcheck-data"}, KeyFile: Flag{Value: "xmppcheck-at-rest.key"},
		Domain: Flag{Value: "localhost"}, C2S: Flag{Value: "127.0.0.1:5222"}, C2STLS: Flag{Value: "127.0.0.1:5223"},
		LogFormat: Flag{Value: "text"}, LogLevel: Flag{Value: "info"},
	}
}

func loadConfigText(t *testing.T, text string) *FileConfig {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	fc, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	return fc
}

// TestMergeServe: a flag the user gave beats the file, the file beats a
// flag's default, and an explicit "" in the file disables a c2s listener.
func TestMergeServe(t *testing.T) {
	const file = `domain: example.test
policy: /p.yaml
data: /d
key_file: /k
test_clock: true
listen:
  c2s: 0.0.0.0:5222
  c2s_tls: ""
  s2s: 0.0.0.0:5269
  http: 127.0.0.1:5280
  metrics: 127.0.0.1:9090
limits:
  auth_timeout: 5s
log:
  format: json
  level: debug
`
	base := ServeConfig{Data: "xmppcheck-data", KeyFile: "xmppcheck-at-rest.key", Domain: "localhost",
		C2S: "127.0.0.1:5222", C2STLS: "127.0.0.1:5223", LogFormat: "text", LogLevel: "info"}
	fromFile := ServeConfig{Policy: "/p.yaml", Data: "/d", KeyFile: "/k", Domain: "example.test",
		C2S: "0.0.0.0:5222", C2STLS: "", S2S: "0.0.0.0:5269", HTTP: "127.0.0.1:5280", Metrics: "127.0.0.1:9090",
		LogFormat: "json", LogLevel: "debug", Limits: Limits{AuthTimeout: 5 * time.Second}, TestClock: true}
	given := func(v string) Flag { return Flag{Value: v, Given: true} }
	for _, tc := range []struct {
		name  string
		file  string // "" = no --config
		flags func(*ServeFlags)
		want  func(*ServeConfig)
	}{
		{name: "no file, no flags", want: func(*ServeConfig) {}},
		{name: "no file, flags given", flags: func(f *ServeFlags) {
			f.Domain, f.C2STLS, f.S2S = given("a.test"), given(""), given("127.0.0.1:5269")
			f.S2SHosts, f.S2SStaticOnly, f.UploadURL = []string{"b.test=127.0.0.1:5270"}, true, "https://u.test"
			f.UploadMaxSize, f.UploadQuota, f.TestClock = 10, 20, true
		}, want: func(c *ServeConfig) {
			c.Domain, c.C2STLS, c.S2S = "a.test", "", "127.0.0.1:5269"
			c.S2SHosts, c.S2SStaticOnly, c.UploadURL = []string{"b.test=127.0.0.1:5270"}, true, "https://u.test"
			c.UploadMaxSize, c.UploadQuota, c.TestClock = 10, 20, true
		}},
		{name: "file over defaults", file: file, want: func(c *ServeConfig) { *c = fromFile }},
		{name: "empty file keeps defaults", file: "domain: \"\"\n", want: func(*ServeConfig) {}},
		{name: "given flags over file", file: file, flags: func(f *ServeFlags) {
			f.Policy, f.Data, f.KeyFile, f.Domain = given("/q.yaml"), given("/e"), given("/l"), given("other.test")
			f.C2S, f.C2STLS, f.S2S, f.HTTP, f.Metrics = given(""), given("127.0.0.1:5223"), given(""), given(""), given("")
			f.LogFormat, f.LogLevel = given("text"), given("warn")
		}, want: func(c *ServeConfig) {
			*c = fromFile
			c.Policy, c.Data, c.KeyFile, c.Domain = "/q.yaml", "/e", "/l", "other.test"
			c.C2S, c.C2STLS, c.S2S, c.HTTP, c.Metrics = "", "127.0.0.1:5223", "", "", ""
			c.LogFormat, c.LogLevel = "text", "warn"
		}},
		{name: "test clock from the file or the flag", file: "test_clock: false\n", flags: func(f *ServeFlags) { f.TestClock = true },
			want: func(c *ServeConfig) { c.TestClock = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fc *FileConfig
			if tc.file != "" {
				fc = loadConfigText(t, tc.file)
			}
			fl := defaults()
			if tc.flags != nil {
				tc.flags(&fl)
			}
			want := base
			tc.want(&want)
			if got := MergeServe(fc, fl); !reflect.DeepEqual(got, want) {
				t.Errorf("MergeServe:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestServeConfigOptions: the options set exactly the merged values, and
// a bad s2s host or certificate is an error naming it.
func TestServeConfigOptions(t *testing.T) {
	c := ServeConfig{Data: "/d", KeyFile: "/k", Domain: "example.test", C2S: "", C2STLS: "127.0.0.1:5223",
		S2S: "127.0.0.1:5269", HTTP: "127.0.0.1:5280", Metrics: "127.0.0.1:9090",
		Limits: Limits{AuthTimeout: 5 * time.Second}, S2SHosts: []string{"b.test=127.0.0.1:5270"}, S2SStaticOnly: true,
		UploadURL: "https://u.test", UploadMaxSize: 10, UploadQuota: 20, TestClock: true}
	opts, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	var got config
	for _, o := range opts {
		o(&got)
	}
	want := config{dataDir: "/d", keyFile: "/k", domain: "example.test", c2s: got.c2s, c2sTLS: got.c2sTLS,
		s2s: "127.0.0.1:5269", http: "127.0.0.1:5280", metrics: "127.0.0.1:9090", testClock: true,
		limits: Limits{AuthTimeout: 5 * time.Second}, s2sHosts: map[string]string{"b.test": "127.0.0.1:5270"},
		s2sStaticOnly: true, uploadURL: "https://u.test", uploadMaxSize: 10, uploadQuota: 20}
	if got.c2s == nil || *got.c2s != "" || got.c2sTLS == nil || *got.c2sTLS != "127.0.0.1:5223" {
		t.Errorf("c2s %v, c2s_tls %v: want \"\" and 127.0.0.1:5223", got.c2s, got.c2sTLS)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options:\n got %+v\nwant %+v", got, want)
	}

	for _, tc := range []struct {
		name string
		c    ServeConfig
		want string
	}{
		{"bad s2s host", ServeConfig{S2SHosts: []string{"nohost"}}, "--s2s-host: "},
		{"missing certificate", ServeConfig{Cert: "/nonexistent/cert.pem", CertKey: "/nonexistent/key.pem"}, "reference: config: certificate: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.Options(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want an error starting %q", err, tc.want)
			}
		})
	}
}
