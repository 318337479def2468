package upload

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

// copyPaths are the two ways plaintext reaches a sealWriter: io.Copy from
// a bytes.Reader goes through its WriteTo (sealWriter.Write); an HTTP body
// has no WriteTo, so io.Copy calls sealWriter.ReadFrom.
var copyPaths = []struct {
	name string
	copy func(sw *sealWriter, p []byte) (int64, error)
}{
	{"Write", func(sw *sealWriter, p []byte) (int64, error) { return io.Copy(sw, bytes.NewReader(p)) }},
	{"ReadFrom", func(sw *sealWriter, p []byte) (int64, error) {
		return sw.ReadFrom(struct{ io.Reader }{bytes.NewReader(p)})
	}},
}

func sealBytes(t *testing.T, key, p []byte, chunk int) []byte {
	t.Helper()
	var blobs [][]byte
	for _, path := range copyPaths {
		var buf bytes.Buffer
		sw, err := newSealWriter(&buf, key, int64(len(p)), chunk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := path.copy(sw, p); err != nil {
			t.Fatalf("%s: %v", path.name, err)
		}
		if err := sw.Close(); err != nil {
			t.Fatalf("%s: %v", path.name, err)
		}
		blobs = append(blobs, buf.Bytes())
	}
	if !bytes.Equal(blobs[0], blobs[1]) {
		t.Fatalf("size %d: Write and ReadFrom seal differently", len(p))
	}
	return blobs[0]
}

func TestBlobRoundTrip(t *testing.T) {
	const chunk = 16
	key := make([]byte, fileKeyLen)
	rand.Read(key)
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3*chunk + 5, 5 * chunk, 10*chunk + 7} {
		p := make([]byte, size)
		rand.Read(p)
		blob := sealBytes(t, key, p, chunk)
		if bytes.Contains(blob, p[:min(size, 8)]) && size >= 8 {
			t.Errorf("size %d: plaintext visible in blob", size)
		}
		rd, err := newOpenReader(bytes.NewReader(blob), key)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		got, err := io.ReadAll(rd)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("size %d: round trip: err %v, equal %v", size, err, bytes.Equal(got, p))
		}
		// WriteTo from any offset writes the rest.
		for _, off := range []int{0, 3, size / 2, size - 1, size} {
			if off < 0 || off > size {
				continue
			}
			rd.Seek(int64(off), io.SeekStart)
			var buf bytes.Buffer
			if n, err := rd.WriteTo(&buf); err != nil || n != int64(size-off) || !bytes.Equal(buf.Bytes(), p[off:]) {
				t.Fatalf("size %d: WriteTo from %d: %d, %v", size, off, n, err)
			}
		}
		// Every (offset, length) range reads back through Seek.
		for off := 0; off <= size; off += 3 {
			if _, err := rd.Seek(int64(off), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 7)
			n, err := io.ReadFull(rd, buf)
			want := p[off:min(off+7, size)]
			if !bytes.Equal(buf[:n], want) || (n < 7 && err != io.ErrUnexpectedEOF && err != io.EOF) {
				t.Fatalf("size %d off %d: got %x (%v), want %x", size, off, buf[:n], err, want)
			}
		}
	}
}

func TestBlobTamper(t *testing.T) {
	const chunk = 16
	key := make([]byte, fileKeyLen)
	rand.Read(key)
	// Nine chunks: long enough for WriteTo's decrypt-ahead path.
	p := make([]byte, 8*chunk+5)
	rand.Read(p)
	blob := sealBytes(t, key, p, chunk)
	otherKey := make([]byte, fileKeyLen)
	rand.Read(otherKey)
	overhead := 16

	flip := func(i int) []byte { b := bytes.Clone(blob); b[i] ^= 1; return b }
	cases := []struct {
		name string
		blob []byte
		key  []byte
	}{
		{"flipped ciphertext byte", flip(blobHeaderLen + 3), key},
		{"flipped size in header", flip(15), key},
		{"dropped last chunk", blob[:len(blob)-(5+overhead)], key},
		{"flipped byte in the eighth chunk", flip(blobHeaderLen + 7*(chunk+overhead) + 2), key},
		{"swapped chunks", swapChunks(blob, chunk+overhead), key},
		{"wrong key", blob, otherKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := newOpenReader(bytes.NewReader(tc.blob), tc.key)
			if err == nil {
				_, err = io.ReadAll(rd)
			}
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("Read: got %v, want errCorrupt", err)
			}
			rd, err = newOpenReader(bytes.NewReader(tc.blob), tc.key)
			if err == nil {
				_, err = rd.WriteTo(io.Discard)
			}
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("WriteTo: got %v, want errCorrupt", err)
			}
		})
	}
	// Positive control: the untouched blob opens with the same code path.
	rd, err := newOpenReader(bytes.NewReader(blob), key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rd); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("control: %v", err)
	}
}

func swapChunks(blob []byte, n int) []byte {
	b := bytes.Clone(blob)
	a := b[blobHeaderLen : blobHeaderLen+n]
	c := b[blobHeaderLen+n : blobHeaderLen+2*n]
	tmp := bytes.Clone(a)
	copy(a, c)
	copy(c, tmp)
	return b
}

func TestSealWriterSizeMismatch(t *testing.T) {
	key := make([]byte, fileKeyLen)
	for _, tc := range []struct {
		name    string
		size    int64
		data    int
		wantErr bool
	}{
		{"exact", 40, 40, false},
		{"too much", 40, 41, true},
		{"too little", 40, 39, true},
		{"empty slot, data", 0, 1, true},
		{"exact, chunk boundary", 32, 32, false},
		{"one more than a chunk boundary", 32, 33, true},
	} {
		for _, path := range copyPaths {
			t.Run(tc.name+" "+path.name, func(t *testing.T) {
				sw, err := newSealWriter(io.Discard, key, tc.size, 16)
				if err != nil {
					t.Fatal(err)
				}
				_, err = path.copy(sw, make([]byte, tc.data))
				if err == nil {
					err = sw.Close()
				}
				if (err != nil) != tc.wantErr {
					t.Fatalf("err = %v, want error %v", err, tc.wantErr)
				}
			})
		}
	}
}
