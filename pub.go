package secsock

// The PUB side of sealed PUB/SUB (SPEC.md §18): every message is sealed
// to the publisher's current sender key (confidential to the subscribers
// that may fetch it) and signed with the publisher's Ed25519 key (no
// subscriber can forge it), with a blinded or clear topic prefix that
// mangos SUB sockets filter on.

import (
	"fmt"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pub"

	"github.com/secsock/secsock/internal/wire"
)

// PublisherConfig configures NewPublisher.
type PublisherConfig struct {
	// Signing is the publisher's identity (required); its public key is
	// the one subscribers trust and must be the KeyService's Publisher.
	Signing SigningKey
	// Keys is the key service holding this publisher's keys (required).
	// Several Publishers (instances) may share one.
	Keys *KeyService
	// ClearTopics sends the topic in clear as the subscription prefix
	// (prefix subscriptions work) instead of a blinded tag (exact topics
	// only). Default: false (blinded).
	ClearTopics bool
	// Clock is the time source of timestamps and rotations. Default:
	// the KeyService's clock.
	Clock func() time.Time
}

// Publisher is one publisher instance on a mangos PUB socket: its own
// instance id (assigned by the KeyService, unique among its Publishers)
// and counter (SPEC.md §18.2, §18.5). Publish is safe for
// concurrent use.
type Publisher struct {
	sock     mangos.Socket
	cfg      PublisherConfig
	instance [wire.PubInstance]byte
	counter  atomic.Uint64
}

// NewPublisher returns a publisher on a new mangos PUB socket.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	switch {
	case cfg.Signing.IsZero():
		return nil, fmt.Errorf("secsock: publisher: no signing key: %w", ErrNoKey)
	case cfg.Keys == nil:
		return nil, fmt.Errorf("secsock: publisher: no key service: %w", ErrNoKey)
	case cfg.Keys.cfg.Publisher != cfg.Signing.Public():
		return nil, fmt.Errorf("secsock: publisher: the key service holds keys of another publisher: %w", ErrBadKey)
	}
	if cfg.Clock == nil {
		cfg.Clock = cfg.Keys.cfg.Clock
	}
	p := &Publisher{cfg: cfg, instance: cfg.Keys.newInstance()}
	s, err := pub.NewSocket()
	if err != nil {
		return nil, err
	}
	p.sock = s
	return p, nil
}

// Socket returns the mangos PUB socket, for Listen, Dial and options.
// Sending on it directly bypasses the sealing.
func (p *Publisher) Socket() mangos.Socket { return p.sock }

// Listen listens on addr.
func (p *Publisher) Listen(addr string) error { return p.sock.Listen(addr) }

// Dial dials addr.
func (p *Publisher) Dial(addr string) error { return p.sock.Dial(addr) }

// Close closes the socket.
func (p *Publisher) Close() error { return p.sock.Close() }

// Publish seals body under topic (1 to 255 bytes; in clear mode without
// 0x00) and sends it. Like mangos PUB it never blocks on slow
// subscribers: they miss messages (a gap in the counter).
func (p *Publisher) Publish(topic string, body []byte) error {
	b, err := p.Seal(topic, body)
	if err != nil {
		return err
	}
	return p.sock.Send(b)
}

// Seal returns the sealed message for topic and body without sending
// it, consuming one counter value; Publish is Seal then Send.
func (p *Publisher) Seal(topic string, body []byte) ([]byte, error) {
	now := p.cfg.Clock()
	sender, tag, err := p.cfg.Keys.sealing(now)
	if err != nil {
		return nil, err
	}
	pk := p.cfg.Signing.Public()
	f := wire.PubFields{
		Blinded: !p.cfg.ClearTopics, Publisher: pk[:], Gen: sender.ID, Instance: p.instance,
		Counter: p.counter.Add(1), Timestamp: uint64(now.UnixMilli()),
	}
	if f.Blinded {
		f.Tag, f.TagKey = wire.TopicTag(&tag.Key, []byte(topic)), tag.ID
	}
	ik := wire.InstanceKey(&sender.Key, pk[:], sender.ID, &p.instance)
	defer clear(ik[:])
	out := make([]byte, 0, wire.PubOverhead(f.Blinded, len(topic))+len(body))
	b, err := wire.AppendPub(out, &f, &ik, p.cfg.Signing.private(), []byte(topic), body)
	if err != nil {
		return nil, fmt.Errorf("secsock: publish: topic must be 1 to %d bytes (no 0x00 in clear mode): %w", wire.MaxTopic, mangos.ErrBadValue)
	}
	return b, nil
}
