// Package logcodec lets the store packages of this module (raftbolt) use the
// raft package's hand-written msgpack codec for log entries without making it
// part of the raft package's public API.
//
// The raft package fills the two functions in at init; any package that
// imports raft can therefore call them. The argument typed any is a
// *raft.Log (this package cannot name the type without an import cycle).
package logcodec

var (
	// Encode appends the msgpack encoding of log (a *raft.Log) to dst,
	// byte-identical to go-msgpack/v2 with hashicorp/raft's handle: the
	// legacy time form unless newTime is set.
	Encode func(dst []byte, log any, newTime bool) []byte

	// Decode decodes src, one complete msgpack value, into log (a
	// *raft.Log). Data and Extensions alias src. Any encoding go-msgpack
	// produces or accepts for a Log is read; an error describes the first
	// problem.
	Decode func(src []byte, log any) error
)
