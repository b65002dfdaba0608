package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/Shopify/toxiproxy/v2/toxics"
)

// captureDir is where capture toxics write (--capture-dir).
var captureDir = os.TempDir()

// captureSeq numbers connections so that each gets its own file.
var captureSeq atomic.Int64

// captureToxic passes data through unchanged and appends it to a file of
// its own per connection and direction: PREFIX-N.bin in captureDir.
type captureToxic struct {
	Prefix string `json:"prefix"`
}

// captureState is one connection's file (a stub keeps it across toxic
// chain changes, which restart Pipe).
type captureState struct {
	f *os.File
}

func (t *captureToxic) NewState() any { return &captureState{} }

func (t *captureToxic) Pipe(stub *toxics.ToxicStub) {
	st := stub.State.(*captureState)
	if st.f == nil {
		name := filepath.Join(captureDir, fmt.Sprintf("%s-%d.bin", filepath.Base(t.Prefix), captureSeq.Add(1)))
		f, err := os.Create(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faultproxy: capture:", err)
		}
		st.f = f
	}
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				if st.f != nil {
					st.f.Close()
				}
				stub.Close()
				return
			}
			if st.f != nil {
				st.f.Write(c.Data)
			}
			stub.Output <- c
		}
	}
}

func init() {
	toxics.Register("capture", new(captureToxic))
}
