package secsock

// Version is this module's version (semantic versioning; the Go module
// path stays github.com/secsock/secsock until a v2 module is needed).
// The minor version follows the wire protocol it speaks: 0.2 speaks
// "secsock curve, version 2" (Protocol). secsock version reports it.
const Version = "0.2.0-dev"

// Protocol is the name and version of the wire protocol this version
// speaks (SPEC.md). Its version byte is the first byte of every sealed
// message.
const Protocol = "secsock curve, version 2"

// ProtocolVersion is the wire protocol's version byte (SPEC.md §3).
const ProtocolVersion = 2
