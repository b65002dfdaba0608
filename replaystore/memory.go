package replaystore

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is a Store in this process's memory, for REP sockets of one
// process that share a server key (for example several sockets behind one
// device). Its state lives as long as the value: it has no generations.
// The zero value is not usable; make one with NewMemory.
type Memory struct {
	mu      sync.Mutex
	entries map[entryKey]*entry
	order   []entryKey // in claim order, for expiry; order[head:] live
	head    int
	now     func() time.Time
}

type entryKey struct {
	service [16]byte
	eph     [32]byte
	counter uint64
}

type entry struct {
	refused  [][32]byte // headers refused UNKNOWN_EPOCH (no claim yet)
	header   [32]byte
	owner    [16]byte
	lease    time.Time // the claim is live until then
	expires  time.Time
	answered bool
	reply    []byte // nil when answered but not kept
	resends  int
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{entries: make(map[entryKey]*entry), now: time.Now}
}

// Len reports how many entries the store holds (expired ones included
// until the next sweep).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Claim implements Store.
func (m *Memory) Claim(ctx context.Context, r *Request, maxResends int) (Result, error) {
	return m.do(ctx, r, maxResends, opClaim)
}

// Lookup implements Store.
func (m *Memory) Lookup(ctx context.Context, r *Request, maxResends int) (Result, error) {
	return m.do(ctx, r, maxResends, opLookup)
}

// Refuse implements Store.
func (m *Memory) Refuse(ctx context.Context, r *Request, maxResends int) (Result, error) {
	return m.do(ctx, r, maxResends, opRefuse)
}

type op uint8

const (
	opClaim op = iota
	opLookup
	opRefuse
)

func (m *Memory) do(ctx context.Context, r *Request, maxResends int, o op) (Result, error) {
	claim := o == opClaim
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	k := entryKey{r.Service, r.Eph, r.Counter}
	e := m.entries[k]
	if e != nil && !now.Before(e.expires) {
		delete(m.entries, k)
		e = nil
	}
	if e != nil && e.refused != nil { // refusals recorded, no claim
		if slices.Contains(e.refused, r.Header) {
			return Result{State: Refused}, nil
		}
		switch {
		case o == opRefuse && len(e.refused) < MaxRefused:
			e.refused = append(e.refused, r.Header)
			return Result{State: Refused}, nil
		case o == opRefuse:
			return Result{State: Conflict}, nil
		case o == opLookup:
			return Result{State: InDoubt}, nil
		}
		*e = entry{header: r.Header, owner: r.Owner, lease: now.Add(r.Lease), expires: now.Add(max(r.TTL, r.Lease))}
		return Result{State: Claimed}, nil
	}
	switch {
	case e == nil && o == opRefuse:
		m.entries[k] = &entry{refused: [][32]byte{r.Header}, expires: now.Add(r.TTL)}
		m.order = append(m.order, k)
		return Result{State: Refused}, nil
	case e == nil && !claim:
		return Result{State: InDoubt}, nil
	case e == nil:
		m.entries[k] = &entry{header: r.Header, owner: r.Owner, lease: now.Add(r.Lease), expires: now.Add(max(r.TTL, r.Lease))}
		m.order = append(m.order, k)
		return Result{State: Claimed}, nil
	case e.header != r.Header:
		return Result{State: Conflict}, nil
	case e.answered && IsRefusal(e.reply):
		return Result{State: Answered, Reply: slices.Clone(e.reply)}, nil // never REPLAYED: it did not run
	case e.answered && e.reply != nil && e.resends < maxResends:
		e.resends++
		return Result{State: Answered, Reply: slices.Clone(e.reply)}, nil
	case e.answered:
		return Result{State: Replayed}, nil
	case claim && e.owner == r.Owner:
		e.lease = now.Add(r.Lease)
		return Result{State: Claimed}, nil
	case now.Before(e.lease):
		return Result{State: Pending, LeaseLeft: e.lease.Sub(now)}, nil
	}
	return Result{State: InDoubt}, nil
}

// Renew implements Store.
func (m *Memory) Renew(ctx context.Context, rs []*Request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		e := m.entries[entryKey{r.Service, r.Eph, r.Counter}]
		if e != nil && e.refused == nil && !e.answered && e.header == r.Header && e.owner == r.Owner && now.Before(e.lease) {
			e.lease = now.Add(r.Lease)
		}
	}
	return nil
}

// Reply implements Store.
func (m *Memory) Reply(ctx context.Context, r *Request, sealed []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[entryKey{r.Service, r.Eph, r.Counter}]
	if e == nil || e.header != r.Header || e.answered {
		return nil
	}
	e.answered = true
	if len(sealed) > 0 && len(sealed) <= MaxReply {
		e.reply = slices.Clone(sealed)
	}
	return nil
}

// sweep drops expired entries from the oldest claims on (TTLs differ
// little: an entry may outlive its expiry by the spread of TTLs); m.mu is
// held.
func (m *Memory) sweep(now time.Time) {
	for ; m.head < len(m.order); m.head++ {
		k := m.order[m.head]
		if e := m.entries[k]; e != nil && now.Before(e.expires) {
			break
		}
		delete(m.entries, k)
	}
	if m.head > 1024 && m.head > len(m.order)/2 {
		m.order = append(m.order[:0], m.order[m.head:]...)
		m.head = 0
	}
}

var _ Store = (*Memory)(nil)
