package secsock

import "github.com/secsock/secsock/internal/wire"

// Bytes that sealing adds to a body (SPEC.md §5).
const (
	// RequestOverhead (70) is added to a request from an anonymous client.
	RequestOverhead = 70
	// VouchedRequestOverhead (158) is added to a request from a client
	// with a long-term key.
	VouchedRequestOverhead = 158
	// ReplyOverhead (35) is added to a reply, with either cipher suite.
	ReplyOverhead = 35
)

// The same sizes from the crypto core; overhead_test.go checks that the
// documented numbers match them.
const (
	anonRequestOver  = wire.AnonOverhead
	vouchRequestOver = wire.VouchOverhead
	replyOver        = wire.ReplyOverhead
)
