package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(len(b))), b...)
}

// TestParseCapture: messages after the SP header come out whole; a
// stream cut mid-message (a reset) ends at the last whole one; a stream
// that is not SP over TCP is refused.
func TestParseCapture(t *testing.T) {
	hdr := []byte{0, 'S', 'P', 0, 0, 0x30, 0, 0}
	m1 := []byte{0x80, 0, 0, 1, 'a', 'b'}
	m2 := []byte{0x80, 0, 0, 2, 'c'}
	stream := append(append(append([]byte{}, hdr...), frame(m1)...), frame(m2)...)
	got, err := parseCapture(stream)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], m1) || !bytes.Equal(got[1], m2) {
		t.Fatalf("parseCapture = %q, %v", got, err)
	}
	if got, _ := parseCapture(stream[:len(stream)-1]); len(got) != 1 {
		t.Errorf("cut stream: %d messages, want 1", len(got))
	}
	if _, err := parseCapture(append([]byte{1}, stream[1:]...)); err == nil {
		t.Error("a stream without the SP header was parsed")
	}
}
