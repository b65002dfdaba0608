// Package wire is the crypto core of the secsock curve mechanism,
// version 2 (SPEC.md): message layouts, canonical key checks, the key
// schedule, and the seal and open of each message kind.
//
// It does no I/O and reads no clock: callers pass keys, counters, times
// and randomness in, so that the test vectors in testdata/vectors replay
// it byte for byte. Section numbers in comments refer to SPEC.md.
package wire
