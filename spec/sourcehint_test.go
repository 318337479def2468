package spec

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSourceFetchHint (issue 12, item 8): when a policy's source URL
// cannot be fetched, the hint names something that exists (there is no
// --source flag).
func TestSourceFetchHint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	p := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(p, []byte("policy: P\nupdated: 2022-09-12\nsource: "+srv.URL+"/policy.txt\nclaims: []\n"), 0o644)
	_, err := Load(p, WithHTTPClient(srv.Client()))
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("want diagnostics, got %v", err)
	}
	found := false
	for _, d := range ds {
		s := d.String()
		if strings.Contains(s, "source "+srv.URL) {
			found = true
			if strings.Contains(s, "--source") {
				t.Errorf("hint names a flag that does not exist: %s", s)
			}
		}
	}
	if !found {
		t.Errorf("no diagnostic about the source: %v", ds)
	}
}
