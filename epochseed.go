package secsock

// Epoch seeds (SPEC.md §14): the forward-secure seed chain from which
// every REP worker of a service derives the same epoch keys alone.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/secsock/secsock/internal/wire"
)

// DefaultEpochLength is the epoch length of NewEpochSeed when none is
// given: one hour, the default lifetime of a client's short-term key, so
// that a client session spans at most two epochs (one extra X25519 each).
const DefaultEpochLength = time.Hour

const epochSeedHeader = "# secsock epoch seed v1 (keep private)"

// skipRatchetForTest makes advance move the index without ratcheting the
// seed: set only by the theft test's control, to show the test fails
// without the ratchet.
var skipRatchetForTest bool

// EpochSeed is a service's epoch seed chain at one epoch: what every REP
// worker holds to derive the epoch keys (OptionEpochSeed). It ratchets
// forward and never back. Its methods are safe for concurrent use. It
// never prints its seed, with any fmt verb or logger.
type EpochSeed struct {
	mu     sync.Mutex
	chain  [16]byte
	origin int64  // O, ms since the Unix epoch
	length int64  // L, ms
	index  uint32 // j: the epoch of seed
	seed   **[32]byte
	path   string // the file it is kept in, "" for none
}

// NewEpochSeed makes a new chain with a random seed, starting now, whose
// epochs last length (DefaultEpochLength if 0; at least the server's
// freshness window plus its clock skew, checked when it is set on a
// socket).
func NewEpochSeed(length time.Duration) (*EpochSeed, error) {
	return newEpochSeed(rand.Reader, time.Now(), length)
}

func newEpochSeed(r io.Reader, now time.Time, length time.Duration) (*EpochSeed, error) {
	if length == 0 {
		length = DefaultEpochLength
	}
	if length < time.Second || length.Milliseconds() > 1<<32-1 {
		return nil, fmt.Errorf("secsock: epoch length %v out of range: %w", length, ErrBadKey)
	}
	s := &EpochSeed{origin: now.UnixMilli(), length: length.Milliseconds()}
	seed := new([32]byte)
	s.seed = &seed
	if _, err := io.ReadFull(r, s.chain[:]); err != nil {
		return nil, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return nil, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	return s, nil
}

// Chain returns the chain's name (32 hex digits): workers of one service
// share it.
func (s *EpochSeed) Chain() string { return hex.EncodeToString(s.chain[:]) }

// Length returns the epoch length.
func (s *EpochSeed) Length() time.Duration { return time.Duration(s.length) * time.Millisecond }

// Epoch returns the index of the epoch at t.
func (s *EpochSeed) Epoch(t time.Time) uint32 { return s.epochAt(t.UnixMilli()) }

func (s *EpochSeed) epochAt(ms int64) uint32 {
	if ms < s.origin {
		return 0
	}
	return uint32((ms - s.origin) / s.length)
}

// Index returns the epoch whose seed s holds now.
func (s *EpochSeed) Index() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// Advance ratchets s so that it holds the seed of the epoch before the one
// at t (the oldest still accepted), erasing the older seeds, and returns
// how many steps it took. A seed ahead of t (more than one epoch: a clock
// far behind, or a file from the future) is an error.
func (s *EpochSeed) Advance(t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.epochAt(t.UnixMilli()); s.index > c {
		return 0, fmt.Errorf("secsock: epoch seed is at epoch %d, ahead of the clock's epoch %d: %w", s.index, c, ErrBadKey)
	}
	return s.advance(t.UnixMilli())
}

// advance ratchets s up to the epoch before the one at ms. A seed already
// there or ahead stays: a serving socket whose clock stepped back keeps
// serving the epochs it can still derive (SPEC.md §14.1) rather than none.
func (s *EpochSeed) advance(ms int64) (int, error) {
	c := s.epochAt(ms)
	want := c
	if c > 0 {
		want = c - 1
	}
	if s.index >= want {
		return 0, nil
	}
	n := 0
	if skipRatchetForTest {
		// The control of the theft test: a build that forgets to ratchet.
		n, s.index = int(want-s.index), max(s.index, want)
		return n, nil
	}
	for ; s.index < want; s.index++ {
		next := wire.Ratchet(*s.seed)
		clear((*s.seed)[:])
		**s.seed = next
		clear(next[:])
		n++
	}
	return n, nil
}

// keysAt returns the epoch keys accepted at ms with clock skew z (SPEC.md
// §14.1: c-1, c, and c+1 within z of its start) and the announcement of
// the current epoch. s must have been advanced to ms.
func (s *EpochSeed) keysAt(ms, z int64) ([]wire.EpochKey, wire.Announcement) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.epochAt(ms)
	if s.index > c+1 {
		return nil, wire.Announcement{} // nothing derivable is accepted at ms
	}
	seed := **s.seed
	defer clear(seed[:])
	var keys []wire.EpochKey
	var cur, next wire.EpochKey
	for i := s.index; i <= c+1; i++ {
		k := wire.DeriveEpoch(&seed, i)
		switch {
		case i == c:
			cur = k
		case i == c+1:
			next = k
		}
		if i+1 >= c && (i <= c || ms >= s.origin+int64(c+1)*s.length-z) {
			keys = append(keys, k)
		}
		r := wire.Ratchet(&seed)
		seed = r
	}
	a := wire.Announcement{Index: c, Start: uint64(s.origin + int64(c)*s.length), Length: uint64(s.length),
		Current: cur.Public, Next: next.Public}
	clear(cur.Secret[:])
	clear(next.Secret[:])
	return keys, a
}

// nextChange returns the ms after ms at which the accepted set changes:
// Z before the next epoch starts (its key becomes accepted) or its start.
func (s *EpochSeed) nextChange(ms, z int64) int64 {
	next := s.origin + int64(s.epochAt(ms)+1)*s.length
	if ms < next-z {
		return next - z
	}
	return next
}

// String describes s without its seed.
func (s *EpochSeed) String() string {
	if s == nil {
		return "EpochSeed(nil)"
	}
	return fmt.Sprintf("EpochSeed(chain=%s, epoch=%d, length=%v)", s.Chain(), s.Index(), s.Length())
}

// Format prints String for every verb, so that no verb prints the seed.
func (s *EpochSeed) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue is String for log/slog.
func (s *EpochSeed) LogValue() slog.Value { return slog.StringValue(s.String()) }

// format returns the seed file's contents (SPEC.md §14.6); the caller
// clears them.
func (s *EpochSeed) format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nchain: %s\norigin: %d\nlength: %d\nepoch: %d\nseed: %x\n",
		epochSeedHeader, s.Chain(), s.origin, s.length, s.index, (*s.seed)[:])
	return b.Bytes()
}

// ParseEpochSeed parses the contents of a seed file.
func ParseEpochSeed(data []byte) (*EpochSeed, error) {
	s := &EpochSeed{}
	seed := new([32]byte)
	s.seed = &seed
	got := map[string]bool{}
	err := lines(bytes.NewReader(data), func(n int, line string) error {
		switch {
		case n == 1 && line != epochSeedHeader:
			return &FileError{Line: n, Msg: "not an epoch seed file (its first line must be " + strconv.Quote(epochSeedHeader) + ")"}
		case n == 1 || line == "" || strings.HasPrefix(line, "#"):
			return nil
		}
		k, v, ok := strings.Cut(line, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || got[k] {
			return &FileError{Line: n, Msg: "not a field, or a field given twice"}
		}
		got[k] = true
		return s.setField(n, k, v, seed)
	})
	if err != nil {
		clear(seed[:])
		return nil, err
	}
	for _, k := range []string{"chain", "origin", "length", "epoch", "seed"} {
		if !got[k] {
			clear(seed[:])
			return nil, &FileError{Msg: "missing field " + k + ":"}
		}
	}
	return s, nil
}

func (s *EpochSeed) setField(n int, k, v string, seed *[32]byte) error {
	bad := func() error { return &FileError{Line: n, Msg: "bad " + k + " value"} }
	switch k {
	case "chain":
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != len(s.chain) {
			return bad()
		}
		copy(s.chain[:], b)
	case "seed":
		b, err := hex.DecodeString(v)
		defer clear(b)
		if err != nil || len(b) != 32 {
			return bad()
		}
		copy(seed[:], b)
	case "origin", "length", "epoch":
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil || x < 0 || (k == "length" && (x < 1000 || x > 1<<32-1)) || (k == "epoch" && x > 1<<32-1) {
			return bad()
		}
		switch k {
		case "origin":
			s.origin = x
		case "length":
			s.length = x
		default:
			s.index = uint32(x)
		}
	default:
		return &FileError{Line: n, Msg: "unknown field " + strconv.Quote(k)}
	}
	return nil
}

// WriteEpochSeedFile writes s to a new file at path (mode 0600, never
// replacing an existing file), as WriteSecretKeyFile does.
func WriteEpochSeedFile(path string, s *EpochSeed) error {
	s.mu.Lock()
	data := s.format()
	s.mu.Unlock()
	defer clear(data)
	return writeNewFile(path, data, 0o600)
}

// LoadEpochSeedFile reads a seed file, refusing one that group or others
// can access, and ratchets it to the epoch before now's, rewriting the file
// if that took steps (advanced reports how many). A socket given the
// result with OptionEpochSeed keeps the file ratcheted as epochs pass.
func LoadEpochSeedFile(path string, now time.Time) (s *EpochSeed, advanced int, err error) {
	data, err := readPrivateFile(path, "epoch seed file")
	defer clear(data)
	if err != nil {
		return nil, 0, err
	}
	if s, err = ParseEpochSeed(data); err != nil {
		return nil, 0, withPath(path, err)
	}
	s.path = path
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.epochAt(now.UnixMilli()); s.index > c {
		return nil, 0, withPath(path, fmt.Errorf("secsock: epoch seed is at epoch %d, ahead of the clock's epoch %d: %w", s.index, c, ErrBadKey))
	}
	if advanced, err = s.advance(now.UnixMilli()); err != nil {
		return nil, 0, withPath(path, err)
	}
	if advanced > 0 {
		if err := s.save(); err != nil {
			return nil, 0, err
		}
	}
	return s, advanced, nil
}

// AdvanceEpochSeedFile ratchets the seed file at path to now (see
// LoadEpochSeedFile); it is idempotent, for a timer on every stored copy.
func AdvanceEpochSeedFile(path string, now time.Time) (advanced int, err error) {
	_, advanced, err = LoadEpochSeedFile(path, now)
	return advanced, err
}

// save rewrites s's file, if it has one; s.mu is held.
func (s *EpochSeed) save() error {
	if s.path == "" {
		return nil
	}
	data := s.format()
	defer clear(data)
	return replaceFile(s.path, data, 0o600)
}
