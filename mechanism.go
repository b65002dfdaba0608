package secsock

import (
	"errors"
	"sort"

	"go.nanomsg.org/mangos/v3"
)

// Mechanism is a message security scheme, selected by its Name with
// OptionMechanism. "none" and "curve" exist now; more (a pre-shared-key or
// a FIPS-approved scheme) can sit beside them. Implementations live in
// this package, where their wire format is specified and tested.
type Mechanism interface {
	// Name is the value of OptionMechanism that selects the mechanism.
	Name() string
	// newClient returns the REQ side, or nil for a pass-through.
	newClient(c *config) (clientMechanism, error)
	// newServer returns the REP side, or nil for a pass-through. old is
	// the socket's previous server state, which must survive option
	// changes so that replay protection never resets.
	newServer(c *config, old serverMechanism) (serverMechanism, error)
}

type clientMechanism interface {
	sealRequest(dst, body []byte, ping bool) ([]byte, outstanding, error)
	openReply(dst []byte, o outstanding, wire []byte) ([]byte, error)
	sealedSize(bodyLen int) int
}

type serverMechanism interface {
	openRequest(dst, wire []byte) inbound
	// openRequestFrom is openRequest for a message from pipe, which the
	// accepted and session events name (OptionEventAccepted).
	openRequestFrom(dst, wire []byte, pipe mangos.Pipe) inbound
	sealReply(dst []byte, t ticket, body []byte) ([]byte, error)
	// refuse makes the delivered request t's NOT_AUTHORIZED refusal, kept
	// for its retries; false if the policy did not prepare one.
	refuse(dst []byte, t ticket) ([]byte, bool)
	sealedSize(bodyLen int) int
	// established reports, without any scalar multiplication, whether
	// wire comes from a short-term key the server already holds (an
	// established session), so that a dispatcher can read and answer
	// those first when unknown keys flood it (SPEC.md §6 step 3).
	established(wire []byte) bool
}

// isAdvisory reports whether a REQ-side error came from a message that
// anyone on the path could have made (a hint, a message that does not
// open, a malformed or unknown one): the request is not over, the client
// resends it once and waits a bounded grace for an authenticated answer
// (SPEC.md §7). Authenticated refusals are not advisory.
func isAdvisory(err error) bool {
	switch {
	case errors.Is(err, ErrNotAuthorized), errors.Is(err, ErrStale), errors.Is(err, ErrReplayed),
		errors.Is(err, ErrUnsupportedFeature), errors.Is(err, ErrRefused), errors.Is(err, ErrInDoubt),
		errors.Is(err, ErrUnknownEpoch), errors.Is(err, ErrStoreUnavailable), errors.Is(err, ErrTooLarge):
		return false
	}
	return errors.Is(err, ErrServerKeyMismatch) || errors.Is(err, ErrUnsupported) ||
		errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrMalformed) ||
		errors.Is(err, ErrUnknownVersion) || errors.Is(err, ErrUnknownKind) ||
		errors.Is(err, ErrNotSecsock) || errors.Is(err, ErrBusy)
}

var mechanisms = map[string]Mechanism{
	MechanismNone:  noneMechanism{},
	MechanismCurve: curveMechanism{},
}

// Mechanisms returns the names of the available mechanisms, sorted.
func Mechanisms() []string {
	names := make([]string, 0, len(mechanisms))
	for n := range mechanisms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type noneMechanism struct{}

func (noneMechanism) Name() string                                                { return MechanismNone }
func (noneMechanism) newClient(*config) (clientMechanism, error)                  { return nil, nil }
func (noneMechanism) newServer(*config, serverMechanism) (serverMechanism, error) { return nil, nil }

type curveMechanism struct{}

func (curveMechanism) Name() string { return MechanismCurve }

func (curveMechanism) newClient(c *config) (clientMechanism, error) {
	if err := c.checkHybrid(false); err != nil {
		return nil, err
	}
	n := uint64(c.maxMessages)
	return newCurveClient(clientConfig{
		server:      c.serverKey,
		longTerm:    c.secret,
		suite:       cipherSuites[c.cipher],
		maxMessages: n,
		maxAge:      c.maxAge,
		epochs:      c.epochs,
		rand:        c.rand,
		now:         c.now,
		push:        c.oneWay,
		hybrid:      c.hybrid != HybridOff,
	})
}

func (curveMechanism) newServer(c *config, old serverMechanism) (serverMechanism, error) {
	if c.secret.IsZero() {
		return nil, ErrNoKey
	}
	if err := c.checkHybrid(true); err != nil {
		return nil, err
	}
	s, ok := old.(*curveServer)
	if !ok {
		s = new(curveServer)
	}
	s.configure(c.rand, c.now, c.limits())
	s.setStore(c)
	s.setPolicy(c)
	s.setEvents(c.eventHook, c.eventAccepted, c.eventSessions)
	return s, nil
}
