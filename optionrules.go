package secsock

import (
	"fmt"

	"go.nanomsg.org/mangos/v3"
)

// optionSide says which side of a request/reply exchange an option
// configures.
type optionSide uint8

const (
	bothSides  optionSide = iota
	clientSide            // REQ: the side that seals requests
	serverSide            // REP: the side that holds the service's keys
)

// optionRule is what SetOption checks before a value is applied: the side
// it applies to, and the value types it takes (named in errors).
type optionRule struct {
	side optionSide
	want string
}

var optionRules = map[string]optionRule{
	OptionMechanism:              {bothSides, `a string: "none" or "curve"`},
	OptionSecretKey:              {bothSides, "a SecretKey, a *SecretKey or a key string (ParseSecretKey)"},
	OptionPublicKey:              {bothSides, "nothing: it is read-only"},
	OptionEventHook:              {bothSides, "a func(secsock.Event)"},
	OptionLogger:                 {bothSides, "a *slog.Logger"},
	OptionClock:                  {bothSides, "a func() time.Time"},
	OptionServerKey:              {clientSide, "a PublicKey, a *PublicKey or a key string (ParsePublicKey)"},
	OptionCipher:                 {clientSide, `a string: "xsalsa20poly1305" or "aes256gcm"`},
	OptionShortTermMessages:      {clientSide, "an int from 1 to 16777216"},
	OptionShortTermLifetime:      {clientSide, "a time.Duration above 0 and at most 24h"},
	OptionEpochs:                 {clientSide, `a string: "auto", "require" or "off"`},
	OptionAuthenticateFirst:      {clientSide, "a bool"},
	OptionAdvisoryGrace:          {clientSide, "a time.Duration of 0 or more"},
	OptionPreviousSecretKeys:     {serverSide, "a []SecretKey without zero keys"},
	OptionAuthorizedKeys:         {serverSide, "a []PublicKey"},
	OptionAuthorizer:             {serverSide, "an Authorizer or a func(PublicKey) bool"},
	OptionAllowAnonymous:         {serverSide, "a bool"},
	OptionFreshness:              {serverSide, "a time.Duration above 0, at least OptionMaxClockSkew"},
	OptionMaxClockSkew:           {serverSide, "a time.Duration above 0, at most OptionFreshness"},
	OptionPeerCacheSize:          {serverSide, "an int of 1 or more"},
	OptionReplyCacheSize:         {serverSide, "an int of 1 or more"},
	OptionReplyCacheBytes:        {serverSide, "an int of 1 or more"},
	OptionKeyAgreementBudget:     {serverSide, "an int of 0 (unlimited) or more"},
	OptionEpochSeed:              {serverSide, "a *EpochSeed or the path of a seed file (string)"},
	OptionEventAccepted:          {serverSide, "a bool"},
	OptionEventSessions:          {serverSide, "a bool"},
	OptionBacklog:                {serverSide, "an int of 1 or more"},
	OptionRequestAuthorizer:      {serverSide, "a RequestAuthorizer or a func(Peer, []byte) bool"},
	OptionPermissive:             {serverSide, "a bool"},
	OptionAllowPlain:             {serverSide, "a bool"},
	OptionEpochSource:            {clientSide, "a *Socket: a REQ socket with mechanism curve, or nil"},
	OptionHybrid:                 {bothSides, `a string: "off", "on" or "require"`},
	OptionReplayStore:            {serverSide, "a replaystore.Store, or nil"},
	OptionReplayStoreDeadline:    {serverSide, "a time.Duration above 0"},
	OptionReplayStoreLease:       {serverSide, "a time.Duration above 0"},
	OptionReplayStorePerInstance: {serverSide, "a bool"},
}

// oneWayOnly are the options only PUSH and PULL sockets take.
var oneWayOnly = map[string]bool{OptionEpochSource: true}

// requestReplyOnly are the options that mean nothing without replies or
// without REP's dispatch, so PUSH and PULL refuse them (SPEC.md §15).
var requestReplyOnly = map[string]bool{
	OptionAuthenticateFirst: true, OptionAdvisoryGrace: true, OptionBacklog: true,
	OptionReplyCacheSize: true, OptionReplyCacheBytes: true, OptionPermissive: true, OptionAllowPlain: true,
}

// sockets names the sockets a side's options apply to, for errors.
func (o optionSide) sockets() string {
	if o == clientSide {
		return "REQ and PUSH sockets"
	}
	return "REP and PULL sockets"
}

// checkSide refuses a secsock option that cannot apply to s: one for the
// other side, one that needs replies on PUSH or PULL, or a sealing option
// on a protocol the mechanisms do not cover. Unknown names pass (they are
// mangos's).
func (s *Socket) checkSide(name string, v any) error {
	rule, ok := optionRules[name]
	if !ok {
		return nil
	}
	self := s.sock.Info().SelfName
	if !s.isReqRep() {
		if name == OptionMechanism && v == MechanismNone {
			return nil
		}
		return fmt.Errorf("secsock: option %s: a %s socket can only use mechanism %q: %w", name, self, MechanismNone, errProtocolOption)
	}
	mine := clientSide
	if s.server {
		mine = serverSide
	}
	if rule.side != bothSides && rule.side != mine {
		return fmt.Errorf("secsock: option %s applies to %s only, not to this %s socket: %w", name, rule.side.sockets(), self, mangos.ErrBadOption)
	}
	if s.oneWay && requestReplyOnly[name] {
		return fmt.Errorf("secsock: option %s needs replies; a %s socket has none: %w", name, self, mangos.ErrBadOption)
	}
	if !s.oneWay && oneWayOnly[name] {
		return fmt.Errorf("secsock: option %s applies to PUSH sockets only, not to this %s socket: %w", name, self, mangos.ErrBadOption)
	}
	return nil
}

// errProtocolOption is ErrProtocol and mangos.ErrBadOption at once: the
// option is not one this protocol takes.
var errProtocolOption = fmt.Errorf("%w (%w)", ErrProtocol, mangos.ErrBadOption)

// badValue is the error for a value SetOption refuses: it names what the
// option takes.
func badValue(name string) error {
	want := "another value"
	if r, ok := optionRules[name]; ok {
		want = r.want
	}
	return fmt.Errorf("secsock: option %s takes %s: %w", name, want, mangos.ErrBadValue)
}
