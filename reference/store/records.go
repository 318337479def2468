package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Credentials are the SCRAM values stored for one hash (RFC 5802 §3): never
// the password and never SaltedPassword.
type Credentials struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// User is an account.
type User struct {
	// Name is the normalised localpart.
	Name string `json:"name"`
	// SCRAM maps a hash name ("SHA-1", "SHA-256") to its credentials.
	SCRAM map[string]Credentials `json:"scram"`
	// Email is the optional address given at registration (XEP-0077), if any.
	Email string `json:"email,omitempty"`
}

// CreateUser stores a new account; ErrExists if the name is taken.
func (s *Store) CreateUser(u User) error {
	k := s.Index("user", u.Name)
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get(k) != nil {
			return ErrExists
		}
		return s.putJSON(tx, bUsers, k, u)
	})
}

// PutUser replaces an existing account's record (a password change);
// ErrNotFound if there is none.
func (s *Store) PutUser(u User) error {
	k := s.Index("user", u.Name)
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get(k) == nil {
			return ErrNotFound
		}
		return s.putJSON(tx, bUsers, k, u)
	})
}

// User returns the account called name; ErrNotFound if there is none.
func (s *Store) User(name string) (User, error) {
	var u User
	err := s.view(func(tx *bolt.Tx) error { return s.getJSON(tx, bUsers, s.Index("user", name), &u) })
	return u, err
}

// UserExists reports whether the account exists, without decrypting it.
func (s *Store) UserExists(name string) (bool, error) {
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bUsers).Get(s.Index("user", name)) != nil
		return nil
	})
	return ok, err
}

// Users returns every account name, sorted.
func (s *Store) Users() ([]string, error) {
	var names []string
	err := s.ForEachUser(func(u User) error {
		names = append(names, u.Name)
		return nil
	})
	slices.Sort(names)
	return names, err
}

// ForEachUser calls f with every account, in no particular order, within
// one read transaction; f must not call the store.
func (s *Store) ForEachUser(f func(User) error) error {
	return s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bUsers).ForEach(func(k, v []byte) error {
			p, err := s.open(bUsers, k, v)
			if err != nil {
				return err
			}
			var u User
			if err := json.Unmarshal(p, &u); err != nil {
				return err
			}
			return f(u)
		})
	})
}

// RegisterOwned declares an extension bucket whose record keys begin with
// OwnerIndex(user): DeleteUser deletes those records with the account, in
// the same transaction.
func (s *Store) RegisterOwned(bucket string) {
	s.ownedMu.Lock()
	defer s.ownedMu.Unlock()
	if !slices.Contains(s.owned, bucket) {
		s.owned = append(s.owned, bucket)
	}
}

// OwnerIndex is the key prefix of a user's records: extensions that
// RegisterOwned a bucket start their keys with it.
func (s *Store) OwnerIndex(user string) []byte { return s.Index("user", user) }

// DeleteUser deletes the account and, in the same transaction, its roster,
// vCard, offline messages and records in owned extension buckets. It
// returns ErrNotFound if there is no such account.
func (s *Store) DeleteUser(name string) error {
	uid := s.Index("user", name)
	s.ownedMu.Lock()
	owned := slices.Clone(s.owned)
	s.ownedMu.Unlock()
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get(uid) == nil {
			return ErrNotFound
		}
		if err := s.del(tx, tx.Bucket(bUsers), uid); err != nil {
			return err
		}
		if err := s.del(tx, tx.Bucket(bVCard), uid); err != nil {
			return err
		}
		for _, b := range [][]byte{bRoster, bOffline} {
			if _, err := s.deletePrefix(tx, tx.Bucket(b), uid); err != nil {
				return err
			}
		}
		for _, name := range owned {
			if b := tx.Bucket(extName(name)); b != nil {
				if _, err := s.deletePrefix(tx, b, uid); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Subscription is a roster item's subscription state (RFC 6121 §2.1.2.5).
type Subscription string

// Subscription states.
const (
	SubNone Subscription = "none"
	SubTo   Subscription = "to"
	SubFrom Subscription = "from"
	SubBoth Subscription = "both"
)

// HasTo reports whether the user receives the contact's presence.
func (s Subscription) HasTo() bool { return s == SubTo || s == SubBoth }

// HasFrom reports whether the contact receives the user's presence.
func (s Subscription) HasFrom() bool { return s == SubFrom || s == SubBoth }

// RosterItem is one contact of a user's roster (RFC 6121 §2.1.2).
type RosterItem struct {
	JID    string       `json:"jid"`
	Name   string       `json:"name,omitempty"`
	Groups []string     `json:"groups,omitempty"`
	Sub    Subscription `json:"sub"`
	// Ask: the user asked to subscribe to the contact's presence and the
	// contact has not answered ("pending out", ask='subscribe').
	Ask bool `json:"ask,omitempty"`
	// PendingIn: the contact asked to subscribe to the user's presence and
	// the user has not answered; Request is that presence stanza, delivered
	// again at the user's next available presence (RFC 6121 §3.1.3).
	PendingIn bool   `json:"pending_in,omitempty"`
	Request   []byte `json:"request,omitempty"`
	// Hidden items exist only to remember a pending inbound request: they
	// are not in the roster the user sees (RFC 6121 §3.1.3 keeps such
	// requests outside the roster).
	Hidden bool `json:"hidden,omitempty"`
}

func (s *Store) rosterKey(user, contact string) []byte {
	return append(s.Index("user", user), s.Index("contact", contact)...)
}

// Roster returns the user's roster items, hidden ones included.
func (s *Store) Roster(user string) ([]RosterItem, error) {
	var items []RosterItem
	prefix := s.Index("user", user)
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRoster).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			p, err := s.open(bRoster, k, v)
			if err != nil {
				return err
			}
			var it RosterItem
			if err := json.Unmarshal(p, &it); err != nil {
				return err
			}
			items = append(items, it)
		}
		return nil
	})
	slices.SortFunc(items, func(a, b RosterItem) int {
		if a.JID < b.JID {
			return -1
		}
		if a.JID > b.JID {
			return 1
		}
		return 0
	})
	return items, err
}

// RosterItem returns one item; ErrNotFound if there is none.
func (s *Store) RosterItem(user, contact string) (RosterItem, error) {
	var it RosterItem
	err := s.view(func(tx *bolt.Tx) error { return s.getJSON(tx, bRoster, s.rosterKey(user, contact), &it) })
	return it, err
}

// UpdateRosterItem reads, changes and writes one item atomically. f gets
// the item (zero with JID set when absent) and whether it existed, and
// returns whether to keep it (false deletes it). The item as stored is
// returned.
func (s *Store) UpdateRosterItem(user, contact string, maxItems int, f func(it *RosterItem, exists bool) (keep bool, err error)) (RosterItem, error) {
	k := s.rosterKey(user, contact)
	var out RosterItem
	err := s.update(func(tx *bolt.Tx) error {
		it := RosterItem{JID: contact, Sub: SubNone}
		err := s.getJSON(tx, bRoster, k, &it)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		keep, err := f(&it, exists)
		if err != nil {
			return err
		}
		it.JID = contact
		out = it
		if !keep {
			if exists {
				return s.del(tx, tx.Bucket(bRoster), k)
			}
			return nil
		}
		if !exists && maxItems > 0 {
			n := 0
			prefix := s.Index("user", user)
			c := tx.Bucket(bRoster).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				n++
			}
			if n >= maxItems {
				return ErrQuota
			}
		}
		return s.putJSON(tx, bRoster, k, it)
	})
	return out, err
}

// VCard returns the user's stored vCard (XEP-0054) as XML; ErrNotFound if
// none.
func (s *Store) VCard(user string) ([]byte, error) {
	var out []byte
	k := s.Index("user", user)
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bVCard).Get(k)
		if v == nil {
			return ErrNotFound
		}
		p, err := s.open(bVCard, k, v)
		out = p
		return err
	})
	return out, err
}

// PutVCard stores the user's vCard; an empty one deletes it.
func (s *Store) PutVCard(user string, vcard []byte) error {
	k := s.Index("user", user)
	return s.update(func(tx *bolt.Tx) error {
		if len(vcard) == 0 {
			return s.del(tx, tx.Bucket(bVCard), k)
		}
		return tx.Bucket(bVCard).Put(k, s.seal(bVCard, k, vcard))
	})
}

// OfflineMessage is a message stored for a user with no available resource
// (XEP-0160).
type OfflineMessage struct {
	Key    []byte    // record key, for DeleteOffline
	Stamp  time.Time // when the server accepted it (server clock)
	Stanza []byte    // the message as it will be delivered
}

// PushOffline stores a message for user, accepted at stamp. When the user
// already has max messages (max > 0) it returns ErrQuota. It returns once
// the message is on disk (fsynced); concurrent pushes share one commit.
func (s *Store) PushOffline(user string, stamp time.Time, stanza []byte, max int) error {
	uid := s.Index("user", user)
	return s.batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOffline)
		if max > 0 {
			n := 0
			c := b.Cursor()
			for k, _ := c.Seek(uid); k != nil && bytes.HasPrefix(k, uid); k, _ = c.Next() {
				if n++; n >= max {
					return ErrQuota
				}
			}
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64(append([]byte(nil), uid...), seq)
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(stanza)), uint64(stamp.UnixNano()))
		v = append(v, stanza...)
		return b.Put(k, s.seal(bOffline, k, v))
	})
}

func (s *Store) openOffline(k, v []byte) (OfflineMessage, error) {
	p, err := s.open(bOffline, k, v)
	if err != nil {
		return OfflineMessage{}, err
	}
	if len(p) < 8 {
		return OfflineMessage{}, ErrCorrupted
	}
	return OfflineMessage{
		Key:    append([]byte(nil), k...),
		Stamp:  time.Unix(0, int64(binary.BigEndian.Uint64(p))),
		Stanza: p[8:],
	}, nil
}

// Offline returns the user's offline messages in arrival order.
func (s *Store) Offline(user string) ([]OfflineMessage, error) {
	uid := s.Index("user", user)
	var out []OfflineMessage
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOffline).Cursor()
		for k, v := c.Seek(uid); k != nil && bytes.HasPrefix(k, uid); k, v = c.Next() {
			m, err := s.openOffline(k, v)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// HasOffline reports whether the user has offline messages, without
// decrypting them.
func (s *Store) HasOffline(user string) (bool, error) {
	uid := s.Index("user", user)
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bOffline).Cursor().Seek(uid)
		ok = k != nil && bytes.HasPrefix(k, uid)
		return nil
	})
	return ok, err
}

// DeleteOffline deletes delivered offline messages by key.
func (s *Store) DeleteOffline(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOffline)
		for _, k := range keys {
			if err := s.del(tx, b, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// PurgeOffline deletes every offline message accepted before cutoff and
// returns how many it deleted.
func (s *Store) PurgeOffline(cutoff time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOffline)
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			m, err := s.openOffline(k, v)
			if err != nil {
				return fmt.Errorf("store: purge: %w", err)
			}
			if m.Stamp.Before(cutoff) {
				old = append(old, m.Key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := s.del(tx, b, k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// CountOffline returns the number of stored offline messages.
func (s *Store) CountOffline() (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bOffline).Stats().KeyN
		return nil
	})
	return n, err
}
