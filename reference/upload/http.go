package upload

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/redact"
)

// pathPrefix starts every slot URL's path: /upload/<id>/<filename>.
const pathPrefix = "/upload/"

// Security headers on every answer (XEP-0363 §7, OWASP): the content is
// never sniffed into something executable, never framed, runs no script.
const csp = "default-src 'none'; frame-ancestors 'none'; sandbox"

// inlineTypes are shown inline; everything else downloads as an attachment.
// SVG is absent on purpose: it can carry script.
var inlineTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"image/avif": true, "image/bmp": true,
}

// Handler is the HTTP side of the service: PUT to upload into a slot, GET and
// HEAD to download, OPTIONS for browser clients (CORS, XEP-0363 §6). Nothing
// else exists: there is no index, no listing, no other path.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func setCommonHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Access-Control-Allow-Origin", "*")
}

// fail answers with a fixed body per status so that answers reveal nothing
// beyond the status.
func fail(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code)+"\n")
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w.Header())
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodOptions:
	default:
		// Answered before any lookup: the status says nothing about the path.
		w.Header().Set("Allow", "GET, HEAD, PUT, OPTIONS")
		fail(w, http.StatusMethodNotAllowed)
		return
	}
	id, name, ok := splitPath(r.URL)
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	key := keyOf(id)
	now := s.cfg.clock.Now()
	s.mu.Lock()
	e := s.entries[key]
	if e != nil && e.Filename != name {
		e = nil
	}
	if e != nil && s.expiredLocked(e, now) {
		// Past its age: gone now, whether or not the purge ran yet.
		s.dropLocked(e)
		s.mu.Unlock()
		s.removeFiles(key)
		fail(w, http.StatusNotFound)
		return
	}
	if e == nil {
		s.mu.Unlock()
		fail(w, http.StatusNotFound)
		return
	}
	if r.Method == http.MethodPut {
		s.put(w, r, e) // unlocks
		return
	}
	st := e.state
	s.mu.Unlock()
	if st != stateStored {
		fail(w, http.StatusNotFound)
		return
	}
	s.get(w, r, e)
}

// splitPath takes /upload/<id>/<filename> apart. The id must be base64url;
// the path is never joined to a directory.
func splitPath(u *url.URL) (id, name string, ok bool) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), pathPrefix)
	if !ok || u.RawQuery != "" {
		return "", "", false
	}
	id, ename, ok := strings.Cut(rest, "/")
	if !ok || id == "" || len(id) > 1024 || strings.Contains(ename, "/") {
		return "", "", false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", "", false
		}
	}
	name, err := url.PathUnescape(ename)
	if err != nil || name == "" {
		return "", "", false
	}
	return id, name, true
}

// put stores the body in e's slot. It is called with s.mu held.
func (s *Service) put(w http.ResponseWriter, r *http.Request, e *entry) {
	switch e.state {
	case stateStored, stateUploading:
		s.mu.Unlock()
		// XEP-0363 §5: a slot takes one file.
		fail(w, http.StatusConflict)
		return
	}
	switch {
	case r.ContentLength < 0:
		s.mu.Unlock()
		fail(w, http.StatusLengthRequired)
		return
	case r.ContentLength > e.Size:
		s.mu.Unlock()
		fail(w, http.StatusRequestEntityTooLarge)
		return
	case r.ContentLength != e.Size:
		s.mu.Unlock()
		fail(w, http.StatusBadRequest)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || e.ContentType != "application/octet-stream" {
		if !sameContentType(ct, e.ContentType) {
			s.mu.Unlock()
			fail(w, http.StatusUnsupportedMediaType)
			return
		}
	}
	e.state = stateUploading
	s.mu.Unlock()

	err := s.receive(r.Body, e)
	s.mu.Lock()
	if err != nil {
		if s.entries[e.key] == e {
			e.state = statePending // the slot was not used: the client may retry
		}
		s.mu.Unlock()
		os.Remove(s.dataPath(e.key) + ".tmp")
		s.cfg.logger.Info("upload: upload refused", "err", redact.Wrap(err))
		if errors.Is(err, errTooMuch) {
			fail(w, http.StatusRequestEntityTooLarge)
		} else {
			fail(w, http.StatusBadRequest)
		}
		return
	}
	if s.entries[e.key] != e {
		// The account was removed while the file arrived.
		s.mu.Unlock()
		s.removeFiles(e.key)
		fail(w, http.StatusNotFound)
		return
	}
	e.Uploaded = s.cfg.clock.Now()
	if err := s.writeMeta(e); err != nil {
		e.Uploaded = time.Time{}
		e.state = statePending
		s.mu.Unlock()
		os.Remove(s.dataPath(e.key))
		s.cfg.logger.Error("upload: write metadata", "err", err)
		fail(w, http.StatusInternalServerError)
		return
	}
	e.state = stateStored
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// receive encrypts the body into the slot's data file.
func (s *Service) receive(body io.Reader, e *entry) error {
	tmp := s.dataPath(e.key) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	sw, err := newSealWriter(f, e.FileKey, e.Size, s.cfg.chunk)
	if err != nil {
		return err
	}
	if _, err := io.Copy(sw, body); err != nil {
		return err
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.dataPath(e.key))
}

func (s *Service) get(w http.ResponseWriter, r *http.Request, e *entry) {
	f, err := os.Open(s.dataPath(e.key))
	if err != nil {
		// Purged between the lookup and now.
		fail(w, http.StatusNotFound)
		return
	}
	defer f.Close()
	rd, err := newOpenReader(f, e.FileKey)
	if err != nil {
		s.cfg.logger.Error("upload: open stored file", "err", err)
		fail(w, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", e.ContentType)
	h.Set("Cache-Control", "private, max-age=3600")
	mt, _, _ := mime.ParseMediaType(e.ContentType)
	disp := "attachment"
	if inlineTypes[mt] {
		disp = "inline"
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": e.Filename}); v != "" {
		h.Set("Content-Disposition", v)
	} else {
		h.Set("Content-Disposition", disp)
	}
	if r.Method == http.MethodGet && r.Header.Get("Range") == "" && r.Header.Get("If-Modified-Since") == "" &&
		r.Header.Get("If-None-Match") == "" {
		// The common case, a whole-file download: written chunk by chunk
		// without the copy http.ServeContent makes (measured in
		// BenchmarkTransfer50MB).
		h.Set("Last-Modified", e.Uploaded.UTC().Format(http.TimeFormat))
		h.Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
		h.Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		rd.WriteTo(w)
		return
	}
	http.ServeContent(w, r, "", e.Uploaded, rd)
}

// TLSConfig returns a server TLS configuration for the upload endpoint with
// the given floor (the policy's client-facing TLS minimum).
func TLSConfig(certs []tls.Certificate, minVersion uint16) *tls.Config {
	return &tls.Config{Certificates: certs, MinVersion: minVersion, NextProtos: []string{"h2", "http/1.1"}}
}

// NewHTTPServer wraps h in an http.Server with deadlines on every phase and
// an error log that never carries a client address (net/http logs TLS
// handshake failures with the peer's address).
func NewHTTPServer(h http.Handler, tlsConf *tls.Config, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies of up to the maximum file size must fit: a generous bound
		// still ends a stalled transfer.
		ReadTimeout:  30 * time.Minute,
		WriteTimeout: 30 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     redact.Writer(logger, slog.LevelWarn, "upload: http: "),
	}
}
