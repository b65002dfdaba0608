package secsock

import (
	"errors"
	"fmt"

	"go.nanomsg.org/mangos/v3"
)

// Errors returned by secsock. Match them with errors.Is: the returned errors
// wrap these sentinels with context. mangos errors (mangos.ErrBadValue,
// mangos.ErrBadOption, mangos.ErrClosed, mangos.ErrRecvTimeout, …) are
// returned unchanged where they mean the same thing.
var (
	// ErrNotAuthorized: the server opened the request but its client policy
	// does not accept this client's long-term key (or anonymous clients).
	// The refusal is authenticated: only the server could have made it.
	ErrNotAuthorized = errors.New("secsock: client not authorized by server")

	// ErrServerKeyMismatch: the server could not open the request, most
	// likely because the client has the wrong server public key. This hint
	// is NOT authenticated (a server cannot prove its identity to a client
	// that holds the wrong key), so an active attacker on the path could
	// forge it; it is never returned for a reply that opened correctly.
	ErrServerKeyMismatch = errors.New("secsock: server could not open request (wrong server key?); unauthenticated hint")

	// ErrStale: the server refused the request because its timestamp lies
	// outside the server's freshness window (clock skew between the hosts,
	// or a request retried for longer than the window). Authenticated.
	ErrStale = errors.New("secsock: request outside server freshness window (clock skew?)")

	// ErrReplayed: the server had already delivered this request to its
	// application and no longer resends the reply (for example a retry
	// that arrived after the reply cache dropped it). Authenticated.
	ErrReplayed = errors.New("secsock: request already handled by server, reply no longer available")

	// ErrUnsupported: the server answered with an unauthenticated hint
	// that it does not speak this protocol version.
	ErrUnsupported = errors.New("secsock: protocol version not supported by peer; unauthenticated hint")

	// ErrUnsupportedFeature: the server refused the request's cipher suite
	// or a protocol feature it does not have. Authenticated.
	ErrUnsupportedFeature = errors.New("secsock: cipher suite or feature not supported by server")

	// ErrInDoubt: the server refused the request because it may have
	// handled it already and cannot tell (a retry from long ago, or one
	// that arrived after the server forgot the client's session). The
	// application may or may not have acted on it. Authenticated.
	ErrInDoubt = errors.New("secsock: server may have handled the request already and cannot tell")

	// ErrUnknownEpoch: the server refused a request sealed with an epoch
	// key it does not accept (a worker without the service's epoch seed,
	// a reseeded chain, or a clock far off). Authenticated. The client has
	// forgotten its epoch keys: with OptionEpochs EpochsAuto, sending the
	// request again seals it to the long-term key only.
	ErrUnknownEpoch = errors.New("secsock: server does not accept this epoch key")

	// ErrStoreUnavailable: the server refused the request because the
	// replay store it shares with the other workers (SPEC.md §17) could
	// not be asked in time, and it does not deliver requests without it.
	// The worker that answered did not run the request. If the request
	// may have reached the servers more than once (mangos REQ resends
	// with OptionRetryTime, a resend after a reconnect), another worker
	// may have run an earlier copy whose reply was lost: unless the
	// operation is idempotent, treat it like ErrInDoubt. Authenticated.
	ErrStoreUnavailable = errors.New("secsock: server's shared replay store unavailable; this worker did not run the request")

	// ErrHybridUnsupported: a REQ socket with OptionHybrid on found that
	// its server does not serve the hybrid mode (an authenticated
	// UNSUPPORTED_FEATURE refusal, or no ML-KEM key announced: the server
	// has no epoch seed or the mode off). Nothing was sent outside the
	// mode: the request was not sent. Also matches ErrUnsupportedFeature
	// when the server refused it so.
	ErrHybridUnsupported = errors.New("secsock: server does not serve the hybrid (ML-KEM-768) mode")

	// ErrHybridRequired: the server requires the hybrid mode (OptionHybrid
	// HybridRequire on the REP side) and refused a request sealed without
	// it. Authenticated. The request was not delivered, but it crossed the
	// network protected by X25519 alone.
	ErrHybridRequired = errors.New("secsock: server requires the hybrid (ML-KEM-768) mode")

	// ErrUnknownTicket: the server refused a hybrid ticket it cannot open
	// (forged, or from another service or seed). Authenticated. The
	// client has forgotten the ticket and sent the request again with a
	// fresh ML-KEM ciphertext; this error is reported only when that
	// could not be done.
	ErrUnknownTicket = errors.New("secsock: server does not accept this hybrid ticket")

	// ErrBusy: the server answered with an unauthenticated hint that its
	// budget for new sessions is spent (it is flooded, or the budget is too
	// small for the load). Established sessions are still served.
	ErrBusy = errors.New("secsock: server busy with new sessions; unauthenticated hint")

	// ErrRefused: the server refused the request, authenticated, for a
	// reason this version of the library does not know.
	ErrRefused = errors.New("secsock: request refused by server")

	// ErrNotSecsock: the answer is not a secsock message at all: most
	// likely the peer is a plain mangos/nanomsg socket without secsock.
	ErrNotSecsock = errors.New("secsock: peer does not speak secsock (plain socket?)")

	// ErrTooLarge: a body is over mangos.OptionMaxRecvSize, which on a
	// secsock socket limits bodies exactly. A REQ socket gets it for an
	// authenticated TOO_LARGE refusal (the server's limit) and for a
	// reply over its own limit. It wraps mangos.ErrTooLong.
	ErrTooLarge = fmt.Errorf("secsock: message body over the receive limit: %w", mangos.ErrTooLong)

	// ErrAuthFailed: a sealed message failed authentication: it was forged,
	// corrupted, replayed into the wrong exchange, or sealed with other keys.
	ErrAuthFailed = errors.New("secsock: message authentication failed")

	// ErrMalformed: a message has the wrong length or layout for its kind.
	ErrMalformed = errors.New("secsock: malformed message")

	// ErrUnknownVersion: a message carries a protocol version this
	// implementation does not know.
	ErrUnknownVersion = errors.New("secsock: unknown protocol version")

	// ErrUnknownKind: a message carries a kind byte this implementation
	// does not know, or a kind that is not valid in this direction.
	ErrUnknownKind = errors.New("secsock: unknown or unexpected message kind")

	// ErrWeakKey: a public key of small order (including all zeros) was
	// given or received; it would make the shared secret predictable.
	ErrWeakKey = errors.New("secsock: weak (small-order) public key")

	// ErrBadKey: key text or bytes that do not encode a key.
	ErrBadKey = errors.New("secsock: bad key")

	// ErrNoKey: the curve mechanism is selected but a required key (the
	// socket's secret key on REP, the server's public key on REQ) is not set.
	ErrNoKey = errors.New("secsock: required key not set")

	// ErrWriteOnly: the option can be set but not read back (secret keys).
	ErrWriteOnly = errors.New("secsock: option is write-only")

	// ErrRawSocket: secsock does not wrap raw sockets; devices forward
	// sealed messages as they are and need no keys.
	ErrRawSocket = errors.New("secsock: raw sockets are not wrapped (devices need no keys)")

	// ErrProtocol: secsock supports this protocol only with mechanism "none".
	ErrProtocol = errors.New("secsock: protocol not supported by this mechanism")

	// ErrKeyFilePermissions: a secret key file can be read or written by
	// group or others, so it is refused (as ssh does). Fix: chmod 600.
	ErrKeyFilePermissions = errors.New("secsock: secret key file permissions too open")
)
