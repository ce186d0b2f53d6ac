//go:build unix

package main

import "syscall"

// pause stops the node's process where it stands (SIGSTOP): no thread
// runs, its sockets stay open, and what peers and clients send it waits.
func (p *proc) pause() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// resume lets a paused node run again (SIGCONT).
func (p *proc) resume() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

const canPause = true
