// Package server is the REP side's checks of the secsock curve mechanism
// (SPEC.md §6) as a state machine: peers, replay windows, tombstones, the
// reply cache, the client policy and the work budget. It does no I/O and
// reads no clock; the caller passes each received body and the time, and
// gets back a Decision (deliver, answer with these bytes, or drop).
package server
