// Package subreplay is a subscriber's replay and freshness state for
// sealed PUB/SUB (SPEC.md §18.5), as a pure state machine: no I/O, the
// caller passes the time. One window per (publisher, instance): a
// sliding bitmap of the last Window counters below the highest seen, so
// reordering through devices is tolerated and gaps (PUB drops under
// backpressure) are not errors.
package subreplay

import "sync"

// Window is how many counters below the highest are remembered per
// instance; anything further below is dropped as too old.
const Window = 1024

// MaxInstances bounds the windows kept per publisher; a publisher's
// new instance beyond it is refused until older ones expire.
const MaxInstances = 1024

// Verdict of Check.
type Verdict int

// Verdicts.
const (
	Fresh     Verdict = iota // new: deliver (after Commit)
	Duplicate                // this (publisher, instance, counter) was delivered
	Stale                    // outside the freshness window, before the join, or below the window
	Full                     // too many live instances of this publisher
)

// Key names one publisher instance.
type Key struct {
	Publisher [32]byte
	Instance  [8]byte
}

type window struct {
	high   uint64
	bits   [Window / 64]uint64
	lastTS uint64 // newest timestamp seen, ms
}

// State is the replay state of one subscriber.
type State struct {
	mu        sync.Mutex
	freshness uint64 // ms
	skew      uint64 // ms
	join      uint64 // ms: messages stamped before join - skew are dropped
	wins      map[Key]*window
	perPub    map[[32]byte]int
}

// New returns the state of a subscriber that joined at join (ms), with a
// freshness window and a clock skew allowance in ms.
func New(join, freshness, skew uint64) *State {
	return &State{freshness: freshness, skew: skew, join: join,
		wins: map[Key]*window{}, perPub: map[[32]byte]int{}}
}

// Check says whether message (k, counter, ts) would be fresh at now, and
// records nothing; call it before the expensive checks.
func (s *State) Check(k Key, counter, ts, now uint64) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check(k, counter, ts, now)
}

func (s *State) check(k Key, counter, ts, now uint64) Verdict {
	if ts+s.freshness < now || ts > now+s.skew || ts+s.skew < s.join {
		return Stale
	}
	w := s.wins[k]
	if w == nil {
		s.expire(k.Publisher, now)
		if s.perPub[k.Publisher] >= MaxInstances {
			return Full
		}
		return Fresh
	}
	switch {
	case counter > w.high:
		return Fresh
	case w.high-counter >= Window:
		return Stale
	case w.bits[(counter%Window)/64]&(1<<(counter%64)) != 0:
		return Duplicate
	}
	return Fresh
}

// Commit records a message that passed every check; it reports the
// verdict again under the lock, so two copies racing both past Check are
// delivered once.
func (s *State) Commit(k Key, counter, ts, now uint64) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.check(k, counter, ts, now)
	if v != Fresh {
		return v
	}
	w := s.wins[k]
	if w == nil {
		w = &window{high: counter}
		s.wins[k] = w
		s.perPub[k.Publisher]++
	}
	if counter > w.high {
		for c := w.high + 1; c <= counter && c-w.high <= Window; c++ {
			w.bits[(c%Window)/64] &^= 1 << (c % 64) // forget the slots the window slides over
		}
		w.high = counter
	}
	w.bits[(counter%Window)/64] |= 1 << (counter % 64)
	w.lastTS = max(w.lastTS, ts)
	return Fresh
}

// expire drops the windows of publisher p whose newest message is past
// the freshness window: every message of theirs would be Stale anyway.
func (s *State) expire(p [32]byte, now uint64) {
	if s.perPub[p] < MaxInstances {
		return
	}
	for k, w := range s.wins {
		if k.Publisher == p && w.lastTS+s.freshness+s.skew < now {
			delete(s.wins, k)
			s.perPub[p]--
		}
	}
}

// Instances returns the number of windows held, for tests and stats.
func (s *State) Instances() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wins)
}
