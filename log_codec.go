package raft

import (
	"fmt"

	"github.com/seed48a2b68f/raft/internal/logcodec"
)

func init() {
	logcodec.Encode = func(dst []byte, l any, newTime bool) []byte {
		return appendLog(dst, l.(*Log), newTime)
	}
	logcodec.Decode = func(src []byte, l any) error {
		return decodeLog(src, l.(*Log))
	}
}

// decodeLog decodes src, one complete msgpack value written by a log store
// (ours, raft-boltdb's, or go-msgpack with any handle settings), into l. The
// byte fields alias src. Should our decoder refuse a value, go-msgpack/v2
// gets a second look, so that no entry a hashicorp store could read is lost.
func decodeLog(src []byte, l *Log) error {
	r := msgReader{b: src}
	if r.peek() == mpNil {
		return fmt.Errorf("decode log entry: the stored value is nil")
	}
	*l = Log{}
	r.log(l)
	err := r.finish("log entry")
	if err == nil {
		return nil
	}
	var ref Log
	if refErr := decodeMsgPack(src, &ref); refErr != nil {
		return err
	}
	*l = ref
	return nil
}
