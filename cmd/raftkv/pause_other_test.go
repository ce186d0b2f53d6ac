//go:build !unix

package main

import "errors"

var errNoPause = errors.New("pausing a process needs SIGSTOP")

func (p *proc) pause() error  { return errNoPause }
func (p *proc) resume() error { return errNoPause }

const canPause = false
