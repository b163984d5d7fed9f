package listener

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/retry"
)

// keyOrder is a key-ordered listener's knowledge of the keys in retry
// (KeyOrder; docs/key-order.md). It is split into lanes: lane n is
// partition n of the main topic and of every tier, which the group's
// assignor (laneBalancer) gives to one member, so a lane's records —
// those read from main partition n, which stay in partition n of every
// tier — are all known to the member that owns it. A lane's keys are
// rebuilt from the tiers when it is assigned (loadLanes): the tiers are
// the state, nothing lives only in memory.
type keyOrder struct {
	seed       maphash.Seed
	max        int  // MaxKeysInRetry
	deadLetter bool // FollowersOnDeadLetter(config.FollowersDeadLetter)
	held       atomic.Int64

	mu    sync.Mutex
	lanes map[int32]*lane

	// scanMu serializes the rebuilds, which share one client.
	scanMu sync.Mutex
	scanCl *kgo.Client
}

func newKeyOrder(c *cfg) *keyOrder {
	return &keyOrder{seed: maphash.MakeSeed(), max: c.maxKeys,
		deadLetter: c.followers == config.FollowersDeadLetter, lanes: map[int32]*lane{}}
}

// lane is the keys in retry of one lane. Until it is loaded (ready) its
// parts take no record. Everything below mu is guarded by it.
type lane struct {
	n      int32
	ready  atomic.Bool
	cancel context.CancelFunc // ends its rebuild when it is revoked
	parts  []*part            // its main and tier parts, scheduled once ready

	mu   sync.Mutex
	gone bool
	keys map[uint64]*keyRecs
	// markers are the dead-letter markers a rebuild found, applied to the
	// keys once every tier is read (applyMarkers).
	markers []marker
}

// marker is a dead-letter marker read from a tier: the record of the key
// hashed h at original offset off was dead-lettered under
// config.FollowersDeadLetter while records of its key followed it.
type marker struct {
	h   uint64
	off int64
}

// keyRecs is one key's records in the tiers of a lane (keys are held by
// their 64-bit hash: two keys that collide are ordered as one, which
// delays some records and reorders none).
type keyRecs struct {
	recs []keyRec // by original offset; an offset twice is a duplicate copy
	one  [1]keyRec
	tail string // the tier the key's last publish went to
	due  time.Time
	// dead lists, under config.FollowersDeadLetter, the original offsets
	// of the key's records that were dead-lettered while a record of the
	// key followed them: those followers are dead-lettered in turn.
	dead []int64
	// stale lists the original offsets of the key's records that have
	// their outcome while other copies of them, which a rebuild found,
	// still wait in the tiers (once per copy): those are passed over
	// when reached. The key is kept until they are.
	stale []int64
}

// keyRec is one record of a key waiting in a tier: its original offset on
// the main topic and, for a follower, the offset of the record it follows
// (-1 otherwise). A crash between a copy's publish and the commit of the
// copy it replaces leaves both in the tiers: the lane tracks which copy is
// live (state, topic, at), so that the others are passed over instead of
// each starting a chain of copies of its own.
type keyRec struct {
	off, follows int64
	copies       int32 // copies in the tiers: more than one after a rebuild found stale ones
	state        uint8 // copyUnknown, copyPending or copyKnown
	topic        string
	at           int64 // copyKnown: the live copy's offset in topic
}

// Which copy of a record in the tiers is live (keyRec.state).
const (
	copyUnknown uint8 = iota // read back by a rebuild: the first copy reached is taken
	copyPending              // a copy is being published: wait for its acknowledgement
	copyKnown                // the copy at (topic, at) is the live one
)

func (k *keyRecs) last() int64 { return k.recs[len(k.recs)-1].off }

// insert adds r in offset order.
func (k *keyRecs) insert(r keyRec) {
	i, _ := slices.BinarySearchFunc(k.recs, r.off, func(e keyRec, off int64) int {
		if e.off <= off {
			return -1 // after equal offsets: a copy goes behind the first
		}
		return 1
	})
	k.recs = slices.Insert(k.recs, i, r)
}

// index returns the position of the record at off, or -1.
func (k *keyRecs) index(off int64) int {
	i, ok := slices.BinarySearchFunc(k.recs, off, func(e keyRec, off int64) int {
		switch {
		case e.off < off:
			return -1
		case e.off > off:
			return 1
		}
		return 0
	})
	if !ok {
		return -1
	}
	return i
}

// hash is a key's identity in the lanes.
func (ko *keyOrder) hash(key []byte) uint64 { return maphash.Bytes(ko.seed, key) }

// lane returns lane n, making it when create is set (nil otherwise, or
// when it does not exist).
func (ko *keyOrder) lane(n int32, create bool) (l *lane, made bool) {
	ko.mu.Lock()
	defer ko.mu.Unlock()
	if l = ko.lanes[n]; l != nil || !create {
		return l, false
	}
	l = &lane{n: n, keys: map[uint64]*keyRecs{}}
	ko.lanes[n] = l
	return l, true
}

// drop forgets lane n: it was revoked or lost, or the listener stops.
func (ko *keyOrder) drop(n int32) {
	ko.mu.Lock()
	l := ko.lanes[n]
	delete(ko.lanes, n)
	ko.mu.Unlock()
	if l == nil {
		return
	}
	if l.cancel != nil {
		l.cancel()
	}
	l.mu.Lock()
	l.gone = true
	ko.held.Add(-int64(len(l.keys)))
	l.keys = nil
	l.mu.Unlock()
}

// add records that a record of the key hashed h (r: its original offset,
// what it follows, its copy state) went to tier, due at due. Another copy
// of a record the lane holds (a rebuild reads every copy) is counted, not
// added.
func (ko *keyOrder) add(l *lane, h uint64, r keyRec, tier string, due time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ko.addLocked(l, h, r, tier, due)
}

func (ko *keyOrder) addLocked(l *lane, h uint64, r keyRec, tier string, due time.Time) {
	if l.gone {
		return
	}
	k := l.keys[h]
	if k == nil {
		k = &keyRecs{}
		k.recs = k.one[:0] // most keys have one record in retry: no second allocation
		l.keys[h] = k
		ko.held.Add(1)
	}
	if i := k.index(r.off); i >= 0 {
		k.recs[i].copies++
		return
	}
	if len(k.recs) == 0 || r.off >= k.last() {
		k.tail, k.due = tier, due
	}
	r.copies = 1
	k.insert(r)
}

// moved records that a new copy of the key's record at off is being
// published to tier, due at due (a move or a retry): it is the key's last
// publish, and until Kafka acknowledges it (live) no copy of the record is
// delivered.
func (l *lane) moved(h uint64, off int64, tier string, due time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := l.keys[h]; k != nil {
		k.tail, k.due = tier, due
		if i := k.index(off); i >= 0 {
			k.recs[i].state = copyPending
		}
	}
}

// live records that the copy of the key's record at off that Kafka just
// acknowledged, at (topic, at), is the live one.
func (l *lane) live(h uint64, off int64, topic string, at int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := l.keys[h]; k != nil {
		if i := k.index(off); i >= 0 && k.recs[i].state == copyPending {
			k.recs[i].state, k.recs[i].topic, k.recs[i].at = copyKnown, topic, at
		}
	}
}

// done records that the key's record at off has its outcome: handled, or
// dead-lettered (dead), or was never the listener's to order. Under
// config.FollowersDeadLetter a dead-lettered record that a waiting record
// follows is remembered, for its followers.
func (ko *keyOrder) done(l *lane, h uint64, off int64, dead bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[h]
	if k == nil {
		return
	}
	if i := k.index(off); i >= 0 {
		for range k.recs[i].copies - 1 {
			k.stale = append(k.stale, off)
		}
		k.recs = slices.Delete(k.recs, i, i+1)
	}
	if dead && ko.deadLetter && slices.ContainsFunc(k.recs, func(r keyRec) bool { return r.follows == off }) {
		k.dead = append(k.dead, off)
	}
	// A dead offset is kept while a record still follows it.
	k.dead = slices.DeleteFunc(k.dead, func(d int64) bool {
		return !slices.ContainsFunc(k.recs, func(r keyRec) bool { return r.follows == d })
	})
	ko.forgetLocked(l, h, k)
}

// forgetLocked deletes a key with no record in retry and no stale copy
// left to pass over.
func (ko *keyOrder) forgetLocked(l *lane, h uint64, k *keyRecs) {
	if len(k.recs) == 0 && len(k.stale) == 0 {
		delete(l.keys, h)
		ko.held.Add(-1)
	}
}

// verdict is what a key-ordered listener does with a record before the
// handler sees it.
type verdict uint8

const (
	vHandle     verdict = iota // hand it to the handler
	vFollow                    // publish it behind its key's last record, no handler call
	vDeadLetter                // a follower of a dead-lettered record: dead-letter it
	vWait                      // MaxKeysInRetry reached: wait for a key to leave
	vPending                   // its new copy is not acknowledged yet: wait for it
	vStale                     // another copy is the live one: pass over it
)

// order is the listener's decision for a record before any handler call,
// and where a follower goes (tier, due) and what it follows.
type order struct {
	v       verdict
	h       uint64
	tier    string
	due     time.Time
	follows int64
}

// atMain decides for a main-topic record: it follows its key if the key
// has records in retry (and is then counted among them), is handled if
// not, or waits while the lane holds MaxKeysInRetry keys and its key is
// not one of them.
func (ko *keyOrder) atMain(l *lane, rec *kgo.Record) order {
	h := ko.hash(rec.Key)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return order{v: vWait, h: h} // revoked: its part stops
	}
	k := l.keys[h]
	if k != nil && k.index(rec.Offset) >= 0 {
		// Read again after a restart: a copy of it waits in a tier.
		return order{v: vStale, h: h}
	}
	if k == nil || len(k.recs) == 0 {
		if k == nil && ko.held.Load() >= int64(ko.max) {
			return order{v: vWait, h: h}
		}
		return order{v: vHandle, h: h}
	}
	o := order{v: vFollow, h: h, tier: k.tail, due: k.due, follows: k.last()}
	ko.addLocked(l, h, keyRec{off: rec.Offset, follows: o.follows, state: copyPending}, k.tail, k.due)
	return o
}

// atTier decides for a due retry-tier record with state st: it is handled
// when it is its key's first record in retry; otherwise it moves behind
// its key's last record (tier, due) without a handler call. A follower of
// a record dead-lettered under config.FollowersDeadLetter is
// dead-lettered. A record the lane does not know (one another program
// wrote to the tier) joins its key's records first.
func (ko *keyOrder) atTier(l *lane, rec *kgo.Record, st *retry.State) order {
	h := ko.hash(rec.Key)
	follows := int64(-1)
	if st.Follower {
		follows = st.Follows
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return order{v: vWait, h: h} // revoked: its part stops
	}
	off := st.OriginalOffset
	k := l.keys[h]
	i := -1
	if k != nil {
		i = k.index(off)
	}
	if i < 0 {
		if k != nil {
			if j := slices.Index(k.stale, off); j >= 0 {
				// A stale copy of a record that has its outcome.
				k.stale = slices.Delete(k.stale, j, j+1)
				ko.forgetLocked(l, h, k)
				return order{v: vStale, h: h}
			}
		}
		// One the lane does not know (written by another program): it
		// joins its key's records.
		ko.addLocked(l, h, keyRec{off: off, follows: follows, state: copyKnown, topic: rec.Topic, at: rec.Offset}, rec.Topic, st.Due)
		k = l.keys[h]
		i = k.index(off)
	}
	switch e := &k.recs[i]; e.state {
	case copyPending:
		return order{v: vPending, h: h}
	case copyKnown:
		if e.topic != rec.Topic || e.at != rec.Offset {
			e.copies--
			return order{v: vStale, h: h}
		}
	case copyUnknown:
		e.state, e.topic, e.at = copyKnown, rec.Topic, rec.Offset
	}
	if i > 0 {
		if follows < 0 {
			follows = k.recs[i-1].off // not a follower yet: it follows the record before it
		}
		return order{v: vFollow, h: h, tier: k.tail, due: k.due, follows: follows}
	}
	if st.Follower && slices.Contains(k.dead, st.Follows) {
		return order{v: vDeadLetter, h: h, follows: st.Follows}
	}
	return order{v: vHandle, h: h}
}

// markerFor reports, under config.FollowersDeadLetter, whether a record
// of the key hashed h waiting in the lane follows the record at off — so
// a dead-letter marker must say that it was dead-lettered — and the
// tier and due time of the key's last publish, where the marker goes.
func (ko *keyOrder) markerFor(l *lane, h uint64, off int64) (tier string, due time.Time, ok bool) {
	if !ko.deadLetter {
		return "", time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[h]
	if k == nil || !slices.ContainsFunc(k.recs, func(r keyRec) bool { return r.follows == off }) {
		return "", time.Time{}, false
	}
	return k.tail, k.due, true
}

// applyMarkers records, once a rebuild has read every tier of the lane,
// the dead-letter markers it found whose followers still wait.
func (l *lane) applyMarkers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.markers {
		k := l.keys[m.h]
		if k != nil && !slices.Contains(k.dead, m.off) &&
			slices.ContainsFunc(k.recs, func(r keyRec) bool { return r.follows == m.off }) {
			k.dead = append(k.dead, m.off)
		}
	}
	l.markers = nil
}

// isMarker reports whether st is a dead-letter marker's: a follower that
// follows its own original offset.
func isMarker(st *retry.State) bool { return st.Follower && st.Follows == st.OriginalOffset }

// size returns how many keys the lane holds in retry, and how many records.
func (l *lane) size() (keys, recs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range l.keys {
		recs += len(k.recs)
	}
	return len(l.keys), recs
}
