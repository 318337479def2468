package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
)

// Errors of a store file that cannot be opened safely.
var (
	// ErrDamaged: the store file is truncated or its pages are not what
	// bbolt wrote (a disk fault, a partial copy, an editor): restore it
	// from a backup. It is told apart from ErrWrongKey.
	ErrDamaged = errors.New("store: the store file is damaged")
	// ErrEmptyFile: the store file exists with zero length (a failed
	// copy or a full disk at creation); starting on it would start empty
	// and lose every account.
	ErrEmptyFile = errors.New("store: the store file is empty (zero length)")
)

// The first two pages of a bbolt file are its meta pages: a 16-byte page
// header, then magic, version, page size, flags, root bucket (16 bytes),
// freelist page id, high-water page id, transaction id and an FNV-64a
// checksum of the fields before it (go.etcd.io/bbolt internal/common
// Meta). bbolt maps the file and trusts these: a file shorter than its
// high-water mark is read beyond its end, which is a SIGBUS. bbolt offers
// no check that runs before the map, so this one is written here.
const (
	boltMagic   = 0xED0CDAED
	boltVersion = 2
	pageHeader  = 16
	metaSize    = 64
	minPageSize = 512
	maxPageSize = 1 << 16
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64 // high-water mark: pages [0, pgid) exist
	txid     uint64
}

func parseMeta(b []byte) (boltMeta, bool) {
	m := b[pageHeader : pageHeader+metaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// checkFile inspects the store file before bbolt maps it. It returns
// exists=false when there is no file (a new store), ErrEmptyFile for a
// zero-length file, and ErrDamaged when neither meta page is valid or the
// file is shorter than the valid meta page's high-water mark.
func checkFile(path string) (exists bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return true, fmt.Errorf("store: open: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return true, fmt.Errorf("store: %s is not a regular file", path)
	}
	size := fi.Size()
	if size == 0 {
		return true, fmt.Errorf("%w: %s; restore it from a backup (or remove it and the key file to start a new, empty server)", ErrEmptyFile, path)
	}
	head := make([]byte, pageHeader+metaSize)
	var best boltMeta
	found := false
	// Meta page 0 is at offset 0; meta page 1 one page further, at the
	// page size that page 0 (or, when page 0 is bad, the usual sizes) says.
	offsets := []int64{0}
	if n, err := f.ReadAt(head, 0); n == len(head) || err == nil {
		if m, ok := parseMeta(head); ok {
			best, found = m, true
			offsets = append(offsets, int64(m.pageSize))
		}
	}
	if !found {
		offsets = append(offsets, 4096, 8192, 16384, 65536)
	}
	for _, off := range offsets[1:] {
		if _, err := f.ReadAt(head, off); err != nil && !errors.Is(err, io.EOF) {
			continue
		}
		if m, ok := parseMeta(head); ok && (!found || m.txid > best.txid) {
			best, found = m, true
		}
	}
	if !found {
		return true, fmt.Errorf("%w: %s has no valid bbolt meta page (not a store, or overwritten); restore it from a backup", ErrDamaged, path)
	}
	if best.pageSize < minPageSize || best.pageSize > maxPageSize || best.pageSize&(best.pageSize-1) != 0 {
		return true, fmt.Errorf("%w: %s: page size %d", ErrDamaged, path, best.pageSize)
	}
	if need := int64(best.pgid) * int64(best.pageSize); best.pgid < 2 || size < need {
		return true, fmt.Errorf("%w: %s is truncated: %d bytes, its meta page needs %d; restore it from a backup", ErrDamaged, path, size, need)
	}
	return true, nil
}
