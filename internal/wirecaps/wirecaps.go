// Package wirecaps lets this repository's transports outside package raft
// (grpctransport) carry the capabilities a node advertises in its
// AppendEntries and their answers: fields package raft keeps unexported,
// so that they are no part of hashicorp/raft's API. Package raft sets the
// accessors when it is initialized; nothing outside this repository can
// import this package.
package wirecaps

// Request and Response return a pointer to the capabilities field of a
// *raft.AppendEntriesRequest and a *raft.AppendEntriesResponse.
var (
	Request  func(req any) *uint64
	Response func(resp any) *uint64
)
