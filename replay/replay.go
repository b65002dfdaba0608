// Package replay is a sliding-window filter that accepts each 64-bit
// counter at most once, as in RFC 6479 and wireguard-go's replay package.
// Counters may arrive out of order by up to WindowSize-1 positions;
// older counters are refused. A Filter uses a fixed 1,032 bytes.
package replay

const (
	blockBits = 64
	blocks    = 128 // a power of two, as in wireguard-go
	// WindowSize is how far behind the highest counter seen a counter may
	// be and still be accepted (less one block of slack).
	WindowSize = (blocks - 1) * blockBits
)

// Filter remembers which counters it has accepted. The zero value is
// ready to use and has seen nothing. A Filter is not safe for concurrent
// use.
type Filter struct {
	last uint64 // highest counter accepted, plus one (0: none yet)
	ring [blocks]uint64
}

// Reset forgets every counter.
func (f *Filter) Reset() { *f = Filter{} }

// Seen reports whether counter was already accepted or is too old to
// tell, without recording it.
func (f *Filter) Seen(counter uint64) bool {
	c := counter + 1 // so that counter 0 is representable
	if c == 0 {
		return true // counter math.MaxUint64 is never accepted
	}
	if c > f.last {
		return false
	}
	if f.last-c >= WindowSize {
		return true
	}
	return f.ring[(c/blockBits)%blocks]&(1<<(c%blockBits)) != 0
}

// TooOld reports whether counter lies below the window: Seen is then true
// because the filter cannot tell, not because it accepted counter.
func (f *Filter) TooOld(counter uint64) bool {
	c := counter + 1
	return c == 0 || (c <= f.last && f.last-c >= WindowSize)
}

// Accept records counter and reports true if it had not been seen and is
// within the window; otherwise it changes nothing and reports false.
func (f *Filter) Accept(counter uint64) bool {
	if f.Seen(counter) {
		return false
	}
	c := counter + 1
	idx := c / blockBits
	if c > f.last {
		cur := f.last / blockBits
		diff := idx - cur
		if f.last == 0 {
			diff = blocks
		}
		if diff > blocks {
			diff = blocks
		}
		for i := uint64(1); i <= diff; i++ {
			f.ring[(cur+i)%blocks] = 0
		}
		f.last = c
	}
	f.ring[idx%blocks] |= 1 << (c % blockBits)
	return true
}
