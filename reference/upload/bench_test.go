package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkTransfer50MB measures upload (PUT) and download (GET) of a 50 MB
// file over HTTPS through the upload service, side by side with a baseline
// in the same process and iteration: Go's http.FileServer over TLS for
// downloads, and a plain net/http handler that copies the body to a file
// and fsyncs it for uploads (http.FileServer has no PUT). Both servers run
// HTTP/1.1 over TLS with the same configuration and client. Reported:
// MB/s of each and their ratio (service / baseline; the target is ≥ 0.7).
//
//	go test -run '^$' -bench Transfer50MB -benchtime 10x ./reference/upload
func BenchmarkTransfer50MB(b *testing.B) {
	const size = 50 << 20
	data := make([]byte, size)
	rand.Read(data)
	dir := b.TempDir()

	svc, err := New(filepath.Join(dir, "svc"), newTestSealer(b), defaultPolicy(b),
		WithMaxFileSize(size), WithQuota(1<<40))
	if err != nil {
		b.Fatal(err)
	}
	svcSrv := httptest.NewUnstartedServer(svc.Handler())
	svcSrv.TLS = TLSConfig(nil, tls.VersionTLS12)
	svcSrv.StartTLS()
	defer svcSrv.Close()
	if err := svc.SetBaseURL(svcSrv.URL); err != nil {
		b.Fatal(err)
	}

	plainDir := filepath.Join(dir, "plain")
	os.MkdirAll(plainDir, 0o700)
	if err := os.WriteFile(filepath.Join(plainDir, "file.bin"), data, 0o600); err != nil {
		b.Fatal(err)
	}
	fs := http.FileServer(http.Dir(plainDir))
	base := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			fs.ServeHTTP(w, r)
			return
		}
		f, err := os.Create(filepath.Join(plainDir, "put.bin"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, r.Body); err != nil || f.Sync() != nil {
			http.Error(w, "write", 500)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	base.TLS = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	base.StartTLS()
	defer base.Close()
	// One client (and one TLS configuration) for both servers.
	client := svcSrv.Client()
	client.Transport.(*http.Transport).TLSClientConfig.RootCAs.AddCert(base.Certificate())

	put := func(u string) time.Duration {
		req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/octet-stream")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("PUT %s", resp.Status)
		}
		return time.Since(t0)
	}
	get := func(u string) time.Duration {
		t0 := time.Now()
		resp, err := client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != size {
			b.Fatalf("GET %s, %d bytes", resp.Status, n)
		}
		return time.Since(t0)
	}
	ctx := context.Background()
	var svcPut, basePut, svcGet, baseGet time.Duration
	b.SetBytes(2 * size)
	b.ResetTimer()
	for range b.N {
		s, err := svc.RequestSlot(ctx, "bench@example.org", Request{Filename: "file.bin", Size: size, ContentType: "application/octet-stream"})
		if err != nil {
			b.Fatal(err)
		}
		// Alternate the order so neither side always runs on a warm cache.
		basePut += put(base.URL + "/put.bin")
		svcPut += put(s.PutURL)
		svcGet += get(s.GetURL)
		baseGet += get(base.URL + "/file.bin")
		b.StopTimer()
		svc.RemoveOwner(ctx, "bench@example.org")
		b.StartTimer()
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(svcPut), "put-MB/s")
	b.ReportMetric(mbps(basePut), "put-baseline-MB/s")
	b.ReportMetric(mbps(svcPut)/mbps(basePut), "put-ratio")
	b.ReportMetric(mbps(svcGet), "get-MB/s")
	b.ReportMetric(mbps(baseGet), "get-baseline-MB/s")
	b.ReportMetric(mbps(svcGet)/mbps(baseGet), "get-ratio")
}
