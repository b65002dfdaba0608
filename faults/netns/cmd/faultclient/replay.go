package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
)

// spHeaderLen is the SP-over-TCP connection header (0, 'S', 'P', 0,
// protocol, 0, 0); each message then is a big-endian u64 length and
// that many bytes, the REQ request id (4 bytes) first.
const spHeaderLen = 8

// parseCapture splits one recorded client-to-device stream into the
// messages it carried. A stream cut mid-message (a reset) ends there.
func parseCapture(b []byte) ([][]byte, error) {
	if len(b) < spHeaderLen {
		return nil, nil
	}
	if b[0] != 0 || b[1] != 'S' || b[2] != 'P' || b[3] != 0 {
		return nil, errors.New("not an SP-over-TCP stream")
	}
	b = b[spHeaderLen:]
	var msgs [][]byte
	for len(b) >= 8 {
		n := binary.BigEndian.Uint64(b)
		if n > uint64(len(b)-8) {
			break
		}
		msgs = append(msgs, b[8:8+n])
		b = b[8+n:]
	}
	return msgs, nil
}

// replaySummary is replay's JSON line.
type replaySummary struct {
	Streams  int `json:"streams"`
	Messages int `json:"messages"`
	Unique   int `json:"unique"`
	Sent     int `json:"sent"`
	Answers  int `json:"answers"`
}

func runReplay(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	dir := fs.String("captures", "", "directory of faultproxy captures")
	var targets strList
	fs.Var(&targets, "connect", "worker URL (repeatable)")
	match := fs.String("match", "*.bin", "which capture files (a glob in DIR)")
	wait := fs.Duration("wait", 3*time.Second, "how long to collect answers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(*dir, *match))
	if err != nil {
		return err
	}
	var sum replaySummary
	var unique [][]byte
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		msgs, err := parseCapture(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		sum.Streams++
		sum.Messages += len(msgs)
		for _, m := range msgs {
			if len(m) > 4 && !seen[string(m)] {
				seen[string(m)] = true
				unique = append(unique, m)
			}
		}
	}
	sum.Unique = len(unique)
	for _, t := range targets {
		sent, answers, err := replayTo(t, unique, *wait)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		sum.Sent += sent
		sum.Answers += answers
	}
	return json.NewEncoder(os.Stdout).Encode(sum)
}

// replayTo sends every message to one worker on a raw REQ socket (the
// captured request id as the header, the sealed body as it was) and
// counts the answers that come back within wait.
func replayTo(url string, msgs [][]byte, wait time.Duration) (sent, answers int, err error) {
	s, err := xreq.NewSocket()
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	if err := s.SetOption(mangos.OptionRecvDeadline, 200*time.Millisecond); err != nil {
		return 0, 0, err
	}
	if err := s.SetOption(mangos.OptionSendDeadline, time.Second); err != nil {
		return 0, 0, err
	}
	if err := s.Dial(url); err != nil {
		return 0, 0, err
	}
	for _, b := range msgs {
		m := mangos.NewMessage(len(b))
		m.Header = append(m.Header, b[:4]...)
		m.Body = append(m.Body, b[4:]...)
		if err := s.SendMsg(m); err != nil {
			return sent, answers, err
		}
		sent++
	}
	end := time.Now().Add(wait)
	for time.Now().Before(end) {
		if m, err := s.RecvMsg(); err == nil {
			answers++
			m.Free()
		}
	}
	return sent, answers, nil
}
