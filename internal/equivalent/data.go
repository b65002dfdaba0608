package equivalent

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// Entry is one key of testdata/x25519-equivalent/equivalent.json, data
// computed outside this project.
type Entry struct {
	Comment string
	// Public is the canonical encoding, the one X25519(c, 9) gives.
	Public [32]byte
	// All is Public first, then the 15 other byte strings X25519 treats
	// alike, in the file's order.
	All [][32]byte
	// PeerSecret is a secret key with which every encoding in All gives
	// SharedSecret.
	PeerSecret, SharedSecret [32]byte
}

// Load reads the equivalent-encodings file at path. Every key must be
// 32 bytes of hex.
func Load(path string) ([]Entry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Entries []struct {
			Comment      string
			Public       string
			Equivalent   []string
			PeerSecret   string `json:"peer_secret"`
			SharedSecret string `json:"shared_secret"`
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Entry
	for _, e := range doc.Entries {
		var keys [][32]byte
		for _, h := range append([]string{e.Public, e.PeerSecret, e.SharedSecret}, e.Equivalent...) {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("%s: %s: bad key %q", path, e.Comment, h)
			}
			keys = append(keys, [32]byte(b))
		}
		out = append(out, Entry{
			Comment: e.Comment, Public: keys[0], PeerSecret: keys[1], SharedSecret: keys[2],
			All: append([][32]byte{keys[0]}, keys[3:]...),
		})
	}
	return out, nil
}
