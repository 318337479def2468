package store

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Bucket is a sealed key/value bucket for an extension of the server (the
// upload service keeps its slots and files in one). Keys are opaque bytes
// chosen by the extension (use Store.Index or Store.OwnerIndex to avoid
// plaintext names); values are sealed like every other value.
type Bucket struct {
	s    *Store
	name []byte
}

func extName(name string) []byte { return []byte("x:" + name) }

// Bucket returns the extension bucket called name, creating it on first
// write.
func (s *Store) Bucket(name string) *Bucket { return &Bucket{s: s, name: extName(name)} }

// Put stores value under key.
func (b *Bucket) Put(key, value []byte) error {
	return b.s.update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(b.name)
		if err != nil {
			return err
		}
		return bk.Put(key, b.s.seal(b.name, key, value))
	})
}

// Get returns the value under key; ErrNotFound if none.
func (b *Bucket) Get(key []byte) ([]byte, error) {
	var out []byte
	err := b.s.view(func(tx *bolt.Tx) error {
		bk := tx.Bucket(b.name)
		if bk == nil {
			return ErrNotFound
		}
		v := bk.Get(key)
		if v == nil {
			return ErrNotFound
		}
		p, err := b.s.open(b.name, key, v)
		out = p
		return err
	})
	return out, err
}

// Delete deletes key (no error if absent).
func (b *Bucket) Delete(key []byte) error {
	return b.s.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(b.name)
		if bk == nil {
			return nil
		}
		return b.s.del(tx, bk, key)
	})
}

// DeletePrefix deletes every key starting with prefix and returns how many.
func (b *Bucket) DeletePrefix(prefix []byte) (int, error) {
	n := 0
	err := b.s.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(b.name)
		if bk == nil {
			return nil
		}
		var err error
		n, err = b.s.deletePrefix(tx, bk, prefix)
		return err
	})
	return n, err
}

// ForEach calls f with every key and opened value, in key order, within one
// read transaction. f must not call other methods of the store.
func (b *Bucket) ForEach(f func(key, value []byte) error) error {
	return b.s.view(func(tx *bolt.Tx) error {
		bk := tx.Bucket(b.name)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			p, err := b.s.open(b.name, k, v)
			if err != nil {
				return err
			}
			return f(k, p)
		})
	})
}

// DumpRecord is one record of Dump.
type DumpRecord struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"` // hexadecimal
	// Value is the opened value as text when it is UTF-8, else ValueB64.
	Value    string `json:"value,omitempty"`
	ValueB64 string `json:"value_b64,omitempty"`
	// Stamp is an offline message's acceptance time (RFC 3339).
	Stamp string `json:"stamp,omitempty"`
}

// Dump writes every record of the store, opened, as JSON lines. It is the
// evidence an auditor (or the conformance suite) reads with the key: what
// the store holds, in plaintext.
func (s *Store) Dump(w io.Writer) error {
	enc := json.NewEncoder(w)
	return s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			return bk.ForEach(func(k, v []byte) error {
				if v == nil { // nested bucket: none are used
					return nil
				}
				if bytes.Equal(name, bMeta) && bytes.Equal(k, keyIDName) {
					return nil // an HMAC identifying the key, not a sealed record
				}
				r := DumpRecord{Bucket: string(name), Key: hex.EncodeToString(k)}
				p, err := s.open(name, k, v)
				if err != nil {
					return err
				}
				if bytes.Equal(name, bOffline) {
					m, err := s.openOffline(k, v)
					if err != nil {
						return err
					}
					p = m.Stanza
					r.Stamp = m.Stamp.UTC().Format(time.RFC3339Nano)
				}
				if utf8.Valid(p) && !bytes.ContainsRune(p, 0) {
					r.Value = string(p)
				} else {
					r.ValueB64 = base64.StdEncoding.EncodeToString(p)
				}
				return enc.Encode(r)
			})
		})
	})
}

// RawForEach calls f with every key and sealed value of a bucket as stored
// (tests and evidence tools that look for ciphertext in the file).
func (s *Store) RawForEach(bucket string, f func(key, sealed []byte)) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error { f(k, v); return nil })
	})
}
