package raft

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// encodeMsgPack encodes v the way hashicorp/raft does: a default handle with
// the legacy time format, so the bytes match what its peers and stores hold.
func encodeMsgPack(v interface{}) ([]byte, error) {
	var buf bytes.Buffer
	h := codec.MsgpackHandle{}
	h.TimeNotBuiltin = true
	if err := codec.NewEncoder(&buf, &h).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeMsgPack decodes buf into out with a default handle. It never panics:
// a decoder panic on hostile input is turned into an error.
func decodeMsgPack(buf []byte, out interface{}) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("msgpack decode: %v", r)
		}
	}()
	h := codec.MsgpackHandle{}
	return codec.NewDecoderBytes(buf, &h).Decode(out)
}
