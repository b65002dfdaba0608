package secsock

import (
	"testing"

	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
)

// TestDocumentedConstants checks that the numbers go doc shows are the
// crypto core's.
func TestDocumentedConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		doc, real int
	}{
		{"RequestOverhead", RequestOverhead, anonRequestOver},
		{"VouchedRequestOverhead", VouchedRequestOverhead, vouchRequestOver},
		{"ReplyOverhead", ReplyOverhead, replyOver},
		{"ProtocolVersion", ProtocolVersion, int(wire.Version)},
	} {
		if c.doc != c.real {
			t.Errorf("%s is documented as %d, the core says %d", c.name, c.doc, c.real)
		}
	}
	if len(Reasons()) != int(numReasons)-1 || Reasons()[0] != ReasonMalformed || Reasons()[len(Reasons())-1] != ReasonOversize {
		t.Errorf("Reasons() = %v", Reasons())
	}
	for _, r := range Reasons() {
		if r.String() == "unknown" {
			t.Errorf("reason %d has no name", r)
		}
	}
}

// TestFingerprint pins the fingerprint definition: the first 8 bytes of
// SHA-256 over the key, hex.
func TestFingerprint(t *testing.T) {
	k, err := ParsePublicKey("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Fingerprint(); got != "522501f4e7a63f61" {
		t.Errorf("Fingerprint = %q", got)
	}
	if (PublicKey{}).Fingerprint() != "" {
		t.Error("zero key has a fingerprint")
	}
}

// TestReasonsMatchTheCore: the root package converts the state machine's
// reasons by value, so the two lists must stay equal, entry by entry.
func TestReasonsMatchTheCore(t *testing.T) {
	pairs := map[Reason]servercore.Reason{
		ReasonMalformed: servercore.ReasonMalformed, ReasonUnknownVersion: servercore.ReasonUnknownVersion,
		ReasonUnknownKind: servercore.ReasonUnknownKind, ReasonUnsupported: servercore.ReasonUnsupported,
		ReasonWeakKey: servercore.ReasonWeakKey, ReasonForged: servercore.ReasonForged, ReasonBadVouch: servercore.ReasonBadVouch,
		ReasonNotAuthorized: servercore.ReasonNotAuthorized, ReasonStale: servercore.ReasonStale,
		ReasonReplayed: servercore.ReasonReplayed, ReasonRetry: servercore.ReasonRetry, ReasonBusy: servercore.ReasonBusy,
		ReasonInDoubt: servercore.ReasonInDoubt, ReasonUnknownEpoch: servercore.ReasonUnknownEpoch,
		ReasonStoreUnavailable: servercore.ReasonStoreUnavailable, ReasonUnknownTicket: servercore.ReasonUnknownTicket,
		ReasonHybridRequired: servercore.ReasonHybridRequired, ReasonNotSecsock: servercore.ReasonNotSecsock,
		ReasonOversize: servercore.ReasonOversize,
	}
	if len(pairs) != int(numReasons)-1 || int(numReasons) != int(servercore.NumReasons) {
		t.Fatalf("%d pairs, %d root reasons, %d core reasons", len(pairs), numReasons, servercore.NumReasons)
	}
	for r, c := range pairs {
		if int(r) != int(c) {
			t.Errorf("%v is %d here and %d in internal/server", r, r, c)
		}
	}
}
