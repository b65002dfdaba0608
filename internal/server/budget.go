package server

// budget is a token bucket of scalar multiplications for messages from
// unknown short-term keys (SPEC.md §6 step 3). rate 0 means unlimited.
type budget struct {
	rate, burst float64 // per second, and the most saved up
	tokens      float64
	last        int64 // ms of the last refill
}

func newBudget(rate int) budget {
	return budget{rate: float64(rate), burst: float64(rate), tokens: float64(rate)}
}

// take removes n tokens at time now (ms) and reports whether they were
// there.
func (b *budget) take(n int, now int64) bool {
	if b.rate <= 0 {
		return true
	}
	if now > b.last {
		b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate/1000)
		b.last = now
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
