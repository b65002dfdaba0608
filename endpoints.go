package secsock

import (
	"fmt"

	"go.nanomsg.org/mangos/v3"
)

// The mangos.Socket methods that carry no message bodies, forwarded to the
// wrapped socket. They are written out rather than promoted from an
// embedded field so that the wrapped socket's Send and Recv stay out of
// reach: a sealed socket never puts a body on the wire in clear.

// Info returns the wrapped socket's protocol information.
func (s *Socket) Info() mangos.ProtocolInfo { return s.sock.Info() }

// ready fails when the mechanism cannot work with the options set: a
// REP socket on "curve" without OptionSecretKey, a REQ socket without
// OptionServerKey (ErrNoKey), or a sealing mechanism on a protocol it does
// not cover (ErrProtocol). Listen and Dial check it, so that a socket
// that could never answer or be answered fails before it connects
// rather than making its peers time out.
func (s *Socket) ready() error {
	if e := s.engine(); e.err != nil {
		return fmt.Errorf("secsock: %s socket with mechanism %q: %w", s.sock.Info().SelfName, s.mechanism(), e.err)
	}
	s.mu.Lock()
	err := s.cfg.consistent()
	s.mu.Unlock()
	if err == nil {
		s.live.Store(true)
	}
	return err
}

func (s *Socket) mechanism() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.mechanism
}

// Dial connects to addr, as mangos.Socket.Dial, once the mechanism has
// the keys it needs (ErrNoKey otherwise).
func (s *Socket) Dial(addr string) error {
	if err := s.ready(); err != nil {
		return err
	}
	return s.sock.Dial(addr)
}

// DialOptions connects to addr with dialer options, as mangos.Socket.DialOptions.
func (s *Socket) DialOptions(addr string, options map[string]any) error {
	if err := s.ready(); err != nil {
		return err
	}
	return s.sock.DialOptions(addr, options)
}

// NewDialer returns a dialer for addr, as mangos.Socket.NewDialer.
func (s *Socket) NewDialer(addr string, options map[string]any) (mangos.Dialer, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return s.sock.NewDialer(addr, options)
}

// Listen listens on addr, as mangos.Socket.Listen, once the mechanism
// has the keys it needs (ErrNoKey otherwise).
func (s *Socket) Listen(addr string) error {
	if err := s.ready(); err != nil {
		return err
	}
	return s.sock.Listen(addr)
}

// ListenOptions listens on addr with listener options, as mangos.Socket.ListenOptions.
func (s *Socket) ListenOptions(addr string, options map[string]any) error {
	if err := s.ready(); err != nil {
		return err
	}
	return s.sock.ListenOptions(addr, options)
}

// NewListener returns a listener for addr, as mangos.Socket.NewListener.
func (s *Socket) NewListener(addr string, options map[string]any) (mangos.Listener, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return s.sock.NewListener(addr, options)
}

// SetPipeEventHook sets the pipe event hook and returns the previous one,
// as mangos.Socket.SetPipeEventHook.
func (s *Socket) SetPipeEventHook(h mangos.PipeEventHook) mangos.PipeEventHook {
	return s.sock.SetPipeEventHook(h)
}
