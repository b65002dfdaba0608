package wire

import "errors"

// Failures of parsing and opening. The root package maps them to its
// exported errors.
var (
	ErrMalformed    = errors.New("wire: malformed message")
	ErrVersion      = errors.New("wire: other protocol version")
	ErrKind         = errors.New("wire: unexpected message kind")
	ErrOpen         = errors.New("wire: message does not open")
	ErrWeakKey      = errors.New("wire: small-order public key")
	ErrNonCanonical = errors.New("wire: public key is not canonical")
	ErrInvalidKey   = errors.New("wire: public key is not a prime-order point")
	ErrZeroSecret   = errors.New("wire: secret key is all zeros")
)
