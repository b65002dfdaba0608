package secsock

import (
	"testing"

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
	if len(Reasons()) != int(numReasons)-1 || Reasons()[0] != ReasonMalformed || Reasons()[len(Reasons())-1] != ReasonHybridRequired {
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
