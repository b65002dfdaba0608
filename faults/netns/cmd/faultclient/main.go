// Command faultclient is the fault suite's client and attacker.
//
//	faultclient traffic --connect URL --server-key FILE --prefix P [flags]
//	    sends requests "P:N" from C concurrent contexts for a duration (at
//	    most --max requests), each with its own deadline and mangos's REQ
//	    resends on, and prints one JSON summary line: how each request
//	    ended (its reply, a typed secsock error, or its deadline) and the
//	    longest time one took. --log FILE gets one "ID OUTCOME MS" line each.
//	faultclient replay --captures DIR --connect URL [--connect URL...]
//	    parses every SP-over-TCP stream recorded in DIR by faultproxy's
//	    capture toxic and sends each captured request, byte for byte, to
//	    every URL on a raw REQ socket (the attacker on the client's link).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: faultclient traffic|replay [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "traffic":
		err = runTraffic(os.Args[2:])
	case "replay":
		err = runReplay(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultclient:", err)
		os.Exit(1)
	}
}

// strList is a repeatable string flag.
type strList []string

func (s *strList) String() string     { return fmt.Sprint(*s) }
func (s *strList) Set(v string) error { *s = append(*s, v); return nil }
