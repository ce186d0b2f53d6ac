// Package interop runs clusters that mix hashicorp/raft v1.7.3 nodes with
// nodes of this library over real TCP on loopback. It is a module of its own
// so that the library never depends on hashicorp/raft.
package interop
