package raft

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// This file holds the hand-written msgpack codec of the hot messages:
// AppendEntriesRequest (with its entries) and AppendEntriesResponse. The
// encoder writes exactly the bytes go-msgpack/v2 writes with hashicorp/raft's
// handle (maps keyed by field name in sorted order, RPCHeader flattened,
// strings and byte slices in the raw string family, smallest integer forms).
// The decoder accepts what go-msgpack/v2 accepts from real peers (keys in any
// order, unknown keys skipped, str or bin, any integer width, nil for zero,
// structs as positional arrays, every time form) and rejects the rest with an
// error; it never panics. wire_codec_test.go checks both directions against
// go-msgpack/v2, byte for byte and value for value.

// msgpack descriptor bytes used here.
const (
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt4  = 0xd6
	mpFixExt8  = 0xd7
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf

	mpTimeExtType = 0xff // the timestamp extension type, -1
)

// maxEntriesPerMessage bounds the entries one AppendEntriesRequest may carry,
// so that a small hostile message cannot make the decoder allocate a Log per
// byte. hashicorp/raft sends at most MaxAppendEntries (at most 1024).
const maxEntriesPerMessage = 1 << 16

var (
	errMsgTruncated = errors.New("msgpack: message truncated")
	errMsgTooLarge  = errors.New("msgpack: message exceeds the maximum message size")
)

// ---------------------------------------------------------------------------
// Encoding

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpArray16, byte(n>>8), byte(n))
	default:
		return append(b, mpArray32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendRawHeader writes a length in the legacy raw string family, as
// go-msgpack does with WriteExt off: fixstr, then str16, then str32 (never
// str8 or bin).
func appendRawHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpStr16, byte(n>>8), byte(n))
	default:
		return append(b, mpStr32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendKey writes a map key (a field name of at most 31 bytes).
func appendKey(b []byte, k string) []byte {
	b = append(b, 0xa0|byte(len(k)))
	return append(b, k...)
}

// appendBytes writes a []byte field: nil as nil, anything else as a raw
// string (an empty non-nil slice is an empty string).
func appendBytes(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, mpNil)
	}
	b = appendRawHeader(b, len(v))
	return append(b, v...)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= math.MaxInt8:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return append(b, mpUint16, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, mpUint32, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
	}
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v > math.MaxInt8:
		switch {
		case v <= math.MaxInt16:
			return append(b, mpInt16, byte(v>>8), byte(v))
		case v <= math.MaxInt32:
			return append(b, mpInt32, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		default:
			return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
		}
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, mpInt8, byte(v))
	case v >= math.MinInt16:
		return append(b, mpInt16, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return append(b, mpInt32, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
	}
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// appendTime writes a time the way go-msgpack/v2 does. With newFormat false
// (hashicorp/raft's default, TimeNotBuiltin) that is time.MarshalBinary as a
// fixstr, which every raft version reads. With newFormat true it is the
// msgpack timestamp payload as a raw string, and nil for the zero time.
//
// One deliberate difference: when MarshalBinary fails (a zone offset it
// cannot represent, such as -1 minute), go-msgpack writes nothing at all and
// corrupts the stream; we write the same instant in UTC instead.
func appendTime(b []byte, t time.Time, newFormat bool) []byte {
	if !newFormat {
		start := len(b)
		out, err := t.AppendBinary(append(b, 0))
		if err != nil {
			out, _ = t.UTC().AppendBinary(append(b[:start], 0))
		}
		out[start] = 0xa0 | byte(len(out)-start-1)
		return out
	}
	if t.IsZero() {
		return append(b, mpNil)
	}
	t = t.UTC()
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	if sec >= 0 && sec>>34 == 0 {
		data64 := nsec<<34 | uint64(sec)
		if data64&0xffffffff00000000 == 0 {
			return binary.BigEndian.AppendUint32(append(b, 0xa4), uint32(data64))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xa8), data64)
	}
	b = binary.BigEndian.AppendUint32(append(b, 0xac), uint32(nsec))
	return binary.BigEndian.AppendUint64(b, uint64(sec))
}

// appendRPCHeader writes nothing: the header's three fields are flattened
// into the outer map and interleave with the others in sorted key order, so
// each encoder writes them itself.

// appendLog writes one log entry as its 6-key map.
func appendLog(b []byte, l *Log, newTime bool) []byte {
	if l == nil {
		return append(b, mpNil)
	}
	b = append(b, 0x86)
	b = appendKey(b, "AppendedAt")
	b = appendTime(b, l.AppendedAt, newTime)
	b = appendKey(b, "Data")
	b = appendBytes(b, l.Data)
	b = appendKey(b, "Extensions")
	b = appendBytes(b, l.Extensions)
	b = appendKey(b, "Index")
	b = appendUint(b, l.Index)
	b = appendKey(b, "Term")
	b = appendUint(b, l.Term)
	b = appendKey(b, "Type")
	return appendUint(b, uint64(l.Type))
}

// appendAppendEntriesRequest appends the msgpack encoding of req, identical
// to go-msgpack/v2's with hashicorp/raft's handle.
func appendAppendEntriesRequest(b []byte, req *AppendEntriesRequest, newTime bool) []byte {
	if req.capabilities != 0 {
		b = append(b, 0x8a) // one more key, written last
	} else {
		b = append(b, 0x89)
	}
	b = appendKey(b, "Addr")
	b = appendBytes(b, req.Addr)
	b = appendKey(b, "Entries")
	if req.Entries == nil {
		b = append(b, mpNil)
	} else {
		b = appendArrayHeader(b, len(req.Entries))
		for _, l := range req.Entries {
			b = appendLog(b, l, newTime)
		}
	}
	b = appendKey(b, "ID")
	b = appendBytes(b, req.ID)
	b = appendKey(b, "Leader")
	b = appendBytes(b, req.Leader)
	b = appendKey(b, "LeaderCommitIndex")
	b = appendUint(b, req.LeaderCommitIndex)
	b = appendKey(b, "PrevLogEntry")
	b = appendUint(b, req.PrevLogEntry)
	b = appendKey(b, "PrevLogTerm")
	b = appendUint(b, req.PrevLogTerm)
	b = appendKey(b, "ProtocolVersion")
	b = appendInt(b, int64(req.ProtocolVersion))
	b = appendKey(b, "Term")
	b = appendUint(b, req.Term)
	if req.capabilities != 0 {
		// A key hashicorp/raft's go-msgpack skips: an unknown field.
		b = appendKey(b, keyCapabilities)
		b = appendUint(b, req.capabilities)
	}
	return b
}

// keyCapabilities is the msgpack key of AppendEntriesRequest.capabilities;
// hashicorp/raft has no such field and skips it.
const keyCapabilities = "XSeedCapabilities"

// appendAppendEntriesResponse appends the msgpack encoding of resp, identical
// to go-msgpack/v2's.
func appendAppendEntriesResponse(b []byte, resp *AppendEntriesResponse) []byte {
	if resp.capabilities != 0 {
		b = append(b, 0x88) // one more key, written last
	} else {
		b = append(b, 0x87)
	}
	b = appendKey(b, "Addr")
	b = appendBytes(b, resp.Addr)
	b = appendKey(b, "ID")
	b = appendBytes(b, resp.ID)
	b = appendKey(b, "LastLog")
	b = appendUint(b, resp.LastLog)
	b = appendKey(b, "NoRetryBackoff")
	b = appendBool(b, resp.NoRetryBackoff)
	b = appendKey(b, "ProtocolVersion")
	b = appendInt(b, int64(resp.ProtocolVersion))
	b = appendKey(b, "Success")
	b = appendBool(b, resp.Success)
	b = appendKey(b, "Term")
	b = appendUint(b, resp.Term)
	if resp.capabilities != 0 {
		b = appendKey(b, keyCapabilities)
		b = appendUint(b, resp.capabilities)
	}
	return b
}

// ---------------------------------------------------------------------------
// Framing: reading one complete msgpack value off a stream

// readMsgpackValue reads exactly one msgpack value from r and appends its
// bytes to dst. It never reads past the value, never keeps more than limit
// bytes (errMsgTooLarge), and allocates as the bytes arrive, so a declared
// length alone costs nothing. progress, when not nil, is called after every
// chunk read with the value's size so far (the caller extends deadlines).
func readMsgpackValue(r *bufio.Reader, dst []byte, limit int, progress func(int)) ([]byte, error) {
	start := len(dst)
	// pending counts values still to read; containers add their elements.
	// Every value takes at least one byte, so the byte limit bounds it.
	pending := 1
	for pending > 0 {
		pending--
		bd, err := r.ReadByte()
		if err != nil {
			return dst, eofAsTruncated(err, len(dst) > start)
		}
		if len(dst)-start+1 > limit {
			return dst, errMsgTooLarge
		}
		dst = append(dst, bd)
		head, n, elems, err := valueShape(bd)
		if err != nil {
			return dst, err
		}
		if head > 0 {
			if len(dst)-start+head > limit {
				return dst, errMsgTooLarge
			}
			for i := 0; i < head; i++ {
				c, err := r.ReadByte()
				if err != nil {
					return dst, eofAsTruncated(err, true)
				}
				dst = append(dst, c)
			}
			n, elems = shapeLength(bd, dst[len(dst)-head:])
		}
		if elems > 0 {
			pending += elems
			if pending > limit {
				return dst, errMsgTooLarge
			}
		}
		if n > 0 {
			if n > limit-(len(dst)-start) {
				return dst, errMsgTooLarge
			}
			for n > 0 {
				chunk := min(n, 64<<10)
				l := len(dst)
				dst = growBytes(dst, chunk)
				if _, err := io.ReadFull(r, dst[l:l+chunk]); err != nil {
					return dst[:l], eofAsTruncated(err, true)
				}
				n -= chunk
				if progress != nil {
					progress(len(dst) - start)
				}
			}
		}
	}
	return dst, nil
}

// readMessage reads one msgpack value from r into a new buffer of its own,
// which the decoded message may alias. When the whole value is already
// buffered it is scanned in place and copied once; otherwise it is framed
// through scratch (returned for reuse) and then copied. limit and progress
// are those of readMsgpackValue.
func readMessage(r *bufio.Reader, scratch []byte, limit int, progress func(int)) (msg, scratchOut []byte, err error) {
	if r.Buffered() == 0 {
		// Wait for the first bytes; the read fills the buffer with
		// whatever has arrived.
		if _, err := r.Peek(1); err != nil {
			return nil, scratch, err
		}
	}
	if buffered := r.Buffered(); buffered > 0 {
		peek, _ := r.Peek(buffered)
		n, err := valueLen(peek[:min(len(peek), limit)])
		if err == nil {
			msg = append([]byte(nil), peek[:n]...)
			_, _ = r.Discard(n)
			return msg, scratch, nil
		}
		if err != errMsgTruncated {
			return nil, scratch, err
		}
		if len(peek) >= limit {
			return nil, scratch, errMsgTooLarge
		}
	}
	scratch, err = readMsgpackValue(r, scratch[:0], limit, progress)
	if err != nil {
		return nil, scratch, err
	}
	return append([]byte(nil), scratch...), scratch, nil
}

// valueLen returns the length of the msgpack value at the start of b, or
// errMsgTruncated when b holds only part of it.
func valueLen(b []byte) (int, error) {
	off, pending := 0, 1
	for ; pending > 0; pending-- {
		if off >= len(b) {
			return 0, errMsgTruncated
		}
		bd := b[off]
		off++
		switch {
		case bd <= 0x7f || bd >= 0xe0 || bd == mpNil || bd == mpFalse || bd == mpTrue:
			continue
		case bd >= 0xa0 && bd <= 0xbf:
			off += int(bd & 0x1f)
			continue
		case bd >= 0x80 && bd <= 0x8f:
			pending += 2 * int(bd&0x0f)
			continue
		case bd >= 0x90 && bd <= 0x9f:
			pending += int(bd & 0x0f)
			continue
		}
		head, n, elems, err := valueShape(bd)
		if err != nil {
			return 0, err
		}
		if head > 0 {
			if off+head > len(b) {
				return 0, errMsgTruncated
			}
			n, elems = shapeLength(bd, b[off:off+head])
			off += head
		}
		if elems > len(b)-off {
			return 0, errMsgTruncated
		}
		pending += elems
		if n > len(b)-off {
			return 0, errMsgTruncated
		}
		off += n
	}
	if off > len(b) {
		return 0, errMsgTruncated
	}
	return off, nil
}

func eofAsTruncated(err error, midValue bool) error {
	if midValue && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		return errMsgTruncated
	}
	return err
}

// growBytes extends b by n bytes (their content undefined), growing the
// backing array geometrically.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// valueShape describes the value that starts with descriptor bd: head is
// the number of length bytes that follow (0 when the length is in bd), n
// the payload bytes after them, elems the child values (2 per map pair).
// When head > 0, shapeLength gives n and elems from the length bytes.
func valueShape(bd byte) (head, n, elems int, err error) {
	switch {
	case bd <= 0x7f || bd >= 0xe0: // fixints
		return 0, 0, 0, nil
	case bd <= 0x8f:
		return 0, 0, 2 * int(bd&0x0f), nil
	case bd <= 0x9f:
		return 0, 0, int(bd & 0x0f), nil
	case bd <= 0xbf:
		return 0, int(bd & 0x1f), 0, nil
	}
	switch bd {
	case mpNil, mpFalse, mpTrue:
		return 0, 0, 0, nil
	case mpUint8, mpInt8:
		return 0, 1, 0, nil
	case mpUint16, mpInt16:
		return 0, 2, 0, nil
	case mpUint32, mpInt32, mpFloat32:
		return 0, 4, 0, nil
	case mpUint64, mpInt64, mpFloat64:
		return 0, 8, 0, nil
	case mpFixExt1, mpFixExt1 + 1, mpFixExt4, mpFixExt8, mpFixExt16:
		return 0, 1 + 1<<(bd-mpFixExt1), 0, nil
	case mpBin8, mpStr8, mpExt8:
		return 1, 0, 0, nil
	case mpBin16, mpStr16, mpExt16, mpArray16, mpMap16:
		return 2, 0, 0, nil
	case mpBin32, mpStr32, mpExt32, mpArray32, mpMap32:
		return 4, 0, 0, nil
	}
	return 0, 0, 0, fmt.Errorf("msgpack: invalid descriptor byte 0x%02x", bd)
}

func shapeLength(bd byte, h []byte) (n, elems int) {
	var l uint64
	for _, c := range h {
		l = l<<8 | uint64(c)
	}
	// l < 2^32, so it fits an int on every platform raft runs on (64-bit).
	switch bd {
	case mpArray16, mpArray32:
		return 0, int(l)
	case mpMap16, mpMap32:
		return 0, 2 * int(l)
	case mpExt8, mpExt16, mpExt32:
		return 1 + int(l), 0 // the type byte, then the data
	}
	return int(l), 0
}

// ---------------------------------------------------------------------------
// Decoding from a complete message

// msgReader decodes msgpack values from a byte slice. The first error sticks;
// every method returns zero values afterwards.
type msgReader struct {
	b   []byte
	off int
	err error

	// The last legacy time decoded and its bytes: the entries of one batch
	// share their AppendedAt, and UnmarshalBinary looks up the Local zone
	// every time.
	lastTimeRaw []byte
	lastTime    time.Time
}

func (r *msgReader) fail(format string, args ...interface{}) {
	if r.err == nil {
		r.err = fmt.Errorf("msgpack: "+format, args...)
	}
}

func (r *msgReader) next() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errMsgTruncated
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *msgReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = errMsgTruncated
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *msgReader) be(n int) uint64 {
	var v uint64
	for _, c := range r.take(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

// peek returns the next descriptor byte without consuming it.
func (r *msgReader) peek() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errMsgTruncated
		return 0
	}
	return r.b[r.off]
}

// structHeader reads the start of a struct: a map (n pairs), an array (n
// positional fields), or nil (no fields).
func (r *msgReader) structHeader() (n int, positional bool) {
	bd := r.next()
	switch {
	case bd >= 0x80 && bd <= 0x8f:
		return int(bd & 0x0f), false
	case bd == mpMap16:
		return int(r.be(2)), false
	case bd == mpMap32:
		return int(r.be(4)), false
	case bd >= 0x90 && bd <= 0x9f:
		return int(bd & 0x0f), true
	case bd == mpArray16:
		return int(r.be(2)), true
	case bd == mpArray32:
		return int(r.be(4)), true
	case bd == mpNil:
		return 0, false
	}
	r.fail("expected a map, an array or nil for a struct, found 0x%02x", bd)
	return 0, false
}

// rawLen reads the header of a str or bin value and returns its length;
// ok is false for nil.
func (r *msgReader) rawLen(what string) (n int, ok bool) {
	bd := r.next()
	switch {
	case bd >= 0xa0 && bd <= 0xbf:
		return int(bd & 0x1f), true
	case bd == mpStr8 || bd == mpBin8:
		return int(r.be(1)), true
	case bd == mpStr16 || bd == mpBin16:
		return int(r.be(2)), true
	case bd == mpStr32 || bd == mpBin32:
		return int(r.be(4)), true
	case bd == mpNil:
		return 0, false
	}
	r.fail("expected bytes for %s, found 0x%02x", what, bd)
	return 0, false
}

// bytes reads a []byte field: nil stays nil, an empty string is non-nil.
// The result aliases the message.
func (r *msgReader) bytes(what string) []byte {
	n, ok := r.rawLen(what)
	if !ok {
		return nil
	}
	return r.take(n)
}

// key reads a map key, a str or bin.
func (r *msgReader) key() []byte {
	n, ok := r.rawLen("a map key")
	if !ok {
		r.fail("nil map key")
		return nil
	}
	return r.take(n)
}

// uint reads an unsigned integer from any integer form; nil is 0.
func (r *msgReader) uint(what string) uint64 {
	bd := r.next()
	switch {
	case bd <= 0x7f:
		return uint64(bd)
	case bd == mpUint8:
		return r.be(1)
	case bd == mpUint16:
		return r.be(2)
	case bd == mpUint32:
		return r.be(4)
	case bd == mpUint64:
		return r.be(8)
	case bd == mpNil:
		return 0
	case bd >= 0xe0:
		r.fail("negative value for %s", what)
		return 0
	case bd >= mpInt8 && bd <= mpInt64:
		v := r.signed(bd)
		if v < 0 {
			r.fail("negative value for %s", what)
			return 0
		}
		return uint64(v)
	}
	r.fail("expected an integer for %s, found 0x%02x", what, bd)
	return 0
}

// signed reads the payload of an intN value whose descriptor was bd.
func (r *msgReader) signed(bd byte) int64 {
	switch bd {
	case mpInt8:
		return int64(int8(r.be(1)))
	case mpInt16:
		return int64(int16(r.be(2)))
	case mpInt32:
		return int64(int32(r.be(4)))
	default:
		return int64(r.be(8))
	}
}

// int reads a signed integer from any integer form that fits an int64; nil
// is 0.
func (r *msgReader) int(what string) int64 {
	bd := r.next()
	switch {
	case bd <= 0x7f || bd >= 0xe0:
		return int64(int8(bd))
	case bd >= mpInt8 && bd <= mpInt64:
		return r.signed(bd)
	case bd == mpUint8:
		return int64(r.be(1))
	case bd == mpUint16:
		return int64(r.be(2))
	case bd == mpUint32:
		return int64(r.be(4))
	case bd == mpUint64:
		v := r.be(8)
		if v > math.MaxInt64 {
			r.fail("value out of range for %s", what)
			return 0
		}
		return int64(v)
	case bd == mpNil:
		return 0
	}
	r.fail("expected an integer for %s, found 0x%02x", what, bd)
	return 0
}

// bool reads a bool, also from the integers 0 and 1; nil is false.
func (r *msgReader) bool(what string) bool {
	switch bd := r.next(); bd {
	case mpTrue, 1:
		return true
	case mpFalse, 0, mpNil:
		return false
	default:
		r.fail("expected a bool for %s, found 0x%02x", what, bd)
		return false
	}
}

// time reads a time in any of the forms raft peers write: nil (the zero
// time), MarshalBinary bytes as a fixstr (hashicorp/raft's default), the
// msgpack timestamp payload of 4, 8 or 12 bytes as str or bin (the "new"
// format), or the timestamp extension (type -1).
func (r *msgReader) time() time.Time {
	var t time.Time
	bd := r.peek()
	if r.err != nil {
		return t
	}
	var payload []byte
	switch bd {
	case mpFixExt4, mpFixExt8, mpExt8:
		r.next()
		n := 4
		if bd == mpFixExt8 {
			n = 8
		} else if bd == mpExt8 {
			n = int(r.be(1))
		}
		// go-msgpack takes ext8 only with 12 bytes (timestamp96).
		if typ := r.next(); r.err == nil && (typ != mpTimeExtType || bd == mpExt8 && n != 12) {
			r.fail("invalid time extension (type 0x%02x, %d bytes)", typ, n)
			return t
		}
		payload = r.take(n)
	default:
		n, ok := r.rawLen("a time")
		if !ok {
			return t
		}
		payload = r.take(n)
		if bd >= 0xa0 && bd <= 0xbf && r.err == nil {
			if r.lastTimeRaw != nil && bytes.Equal(payload, r.lastTimeRaw) {
				return r.lastTime
			}
			if err := t.UnmarshalBinary(payload); err == nil {
				r.lastTimeRaw, r.lastTime = payload, t
				return t
			}
			t = time.Time{}
		}
	}
	if r.err != nil {
		return t
	}
	switch len(payload) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(payload)), 0).UTC()
	case 8:
		v := binary.BigEndian.Uint64(payload)
		return time.Unix(int64(v&0x3ffffffff), int64(v>>34)).UTC()
	case 12:
		nsec := binary.BigEndian.Uint32(payload[:4])
		sec := binary.BigEndian.Uint64(payload[4:])
		return time.Unix(int64(sec), int64(nsec)).UTC()
	}
	r.fail("invalid time: %d bytes", len(payload))
	return t
}

// skip passes over one value of any type, iteratively (no recursion, so a
// deeply nested hostile value cannot exhaust the stack).
func (r *msgReader) skip() {
	pending := 1
	for pending > 0 && r.err == nil {
		pending--
		bd := r.next()
		if r.err != nil {
			return
		}
		head, n, elems, err := valueShape(bd)
		if err != nil {
			r.err = err
			return
		}
		if head > 0 {
			n, elems = shapeLength(bd, r.take(head))
		}
		if elems > len(r.b)-r.off {
			r.err = errMsgTruncated
			return
		}
		pending += elems
		r.take(n)
	}
}

// Field numbers of the decoded structs, in declaration order (the order of
// the positional array form, RPCHeader first).
const (
	fProtocolVersion = iota
	fID
	fAddr
	fTerm
	fLeader
	fPrevLogEntry
	fPrevLogTerm
	fEntries
	fLeaderCommitIndex
	fLastLog
	fSuccess
	fNoRetryBackoff
	fIndex
	fType
	fData
	fExtensions
	fAppendedAt
	fCapabilities
	fUnknown
)

// Key lookups, one per struct, matching case-sensitively as go-msgpack
// does. A switch on string(key) with constant cases neither allocates nor
// calls memequal.

func aeRequestKey(k []byte) int {
	switch string(k) {
	case "Addr":
		return fAddr
	case "Entries":
		return fEntries
	case "ID":
		return fID
	case "Leader":
		return fLeader
	case "LeaderCommitIndex":
		return fLeaderCommitIndex
	case "PrevLogEntry":
		return fPrevLogEntry
	case "PrevLogTerm":
		return fPrevLogTerm
	case "ProtocolVersion":
		return fProtocolVersion
	case "Term":
		return fTerm
	case keyCapabilities:
		return fCapabilities
	}
	return fUnknown
}

func aeResponseKey(k []byte) int {
	switch string(k) {
	case "Addr":
		return fAddr
	case "ID":
		return fID
	case "LastLog":
		return fLastLog
	case "NoRetryBackoff":
		return fNoRetryBackoff
	case "ProtocolVersion":
		return fProtocolVersion
	case "Success":
		return fSuccess
	case "Term":
		return fTerm
	case keyCapabilities:
		return fCapabilities
	}
	return fUnknown
}

func logKey(k []byte) int {
	switch string(k) {
	case "AppendedAt":
		return fAppendedAt
	case "Data":
		return fData
	case "Extensions":
		return fExtensions
	case "Index":
		return fIndex
	case "Term":
		return fTerm
	case "Type":
		return fType
	}
	return fUnknown
}

// structFields describes a decoded struct: its fields in declaration order
// (the positional array form) and its key lookup.
type structFields struct {
	order []int
	key   func([]byte) int
}

var (
	aeRequestFields  = structFields{[]int{fProtocolVersion, fID, fAddr, fTerm, fLeader, fPrevLogEntry, fPrevLogTerm, fEntries, fLeaderCommitIndex}, aeRequestKey}
	aeResponseFields = structFields{[]int{fProtocolVersion, fID, fAddr, fTerm, fLastLog, fSuccess, fNoRetryBackoff}, aeResponseKey}
	logFields        = structFields{[]int{fIndex, fTerm, fType, fData, fExtensions, fAppendedAt}, logKey}
)

// fieldAt returns the field number of the i-th struct element: from the key
// for a map, from the declaration order for an array. Fields the struct does
// not have come back as fUnknown and are skipped by the caller.
func (r *msgReader) fieldAt(i int, positional bool, fs *structFields) int {
	if positional {
		if i < len(fs.order) {
			return fs.order[i]
		}
		return fUnknown
	}
	// Fast path: a fixstr key, which is what every encoder writes.
	if r.err == nil && r.off < len(r.b) {
		if bd := r.b[r.off]; bd >= 0xa0 && bd <= 0xbf {
			n := int(bd & 0x1f)
			if r.off+1+n <= len(r.b) {
				k := r.b[r.off+1 : r.off+1+n]
				r.off += 1 + n
				return fs.key(k)
			}
		}
	}
	return fs.key(r.key())
}

// protocolVersion reads the header's ProtocolVersion (a Go int).
func (r *msgReader) protocolVersion() ProtocolVersion {
	return ProtocolVersion(r.int("ProtocolVersion"))
}

// decodeAppendEntriesResponse decodes msg, one complete msgpack value, into
// resp. The byte fields alias msg.
func decodeAppendEntriesResponse(msg []byte, resp *AppendEntriesResponse) error {
	r := msgReader{b: msg}
	n, positional := r.structHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch r.fieldAt(i, positional, &aeResponseFields) {
		case fProtocolVersion:
			resp.ProtocolVersion = r.protocolVersion()
		case fID:
			resp.ID = r.bytes("ID")
		case fAddr:
			resp.Addr = r.bytes("Addr")
		case fTerm:
			resp.Term = r.uint("Term")
		case fLastLog:
			resp.LastLog = r.uint("LastLog")
		case fSuccess:
			resp.Success = r.bool("Success")
		case fNoRetryBackoff:
			resp.NoRetryBackoff = r.bool("NoRetryBackoff")
		case fCapabilities:
			resp.capabilities = r.uint(keyCapabilities)
		default:
			r.skip()
		}
	}
	return r.finish("AppendEntriesResponse")
}

// finish reports the first error, or trailing bytes after the value.
func (r *msgReader) finish(what string) error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("msgpack: %d bytes after the value", len(r.b)-r.off)
	}
	if r.err != nil {
		return fmt.Errorf("decode %s: %w", what, r.err)
	}
	return nil
}

// decodeAppendEntriesRequest decodes msg, one complete msgpack value, into
// req. msg becomes req's: every byte field aliases it (the entries' Data
// included), so the caller must not reuse it. The allocations are two (the
// []Log and the []*Log) whatever the number of entries.
func decodeAppendEntriesRequest(msg []byte, req *AppendEntriesRequest) error {
	r := msgReader{b: msg}
	n, positional := r.structHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch r.fieldAt(i, positional, &aeRequestFields) {
		case fProtocolVersion:
			req.ProtocolVersion = r.protocolVersion()
		case fID:
			req.ID = r.bytes("ID")
		case fAddr:
			req.Addr = r.bytes("Addr")
		case fTerm:
			req.Term = r.uint("Term")
		case fLeader:
			req.Leader = r.bytes("Leader")
		case fPrevLogEntry:
			req.PrevLogEntry = r.uint("PrevLogEntry")
		case fPrevLogTerm:
			req.PrevLogTerm = r.uint("PrevLogTerm")
		case fLeaderCommitIndex:
			req.LeaderCommitIndex = r.uint("LeaderCommitIndex")
		case fEntries:
			req.Entries = r.entries()
		case fCapabilities:
			req.capabilities = r.uint(keyCapabilities)
		default:
			r.skip()
		}
	}
	return r.finish("AppendEntriesRequest")
}

// entries reads the Entries array: nil, or an array of Log structs (a nil
// element stays a nil pointer, which raft rejects with an error reply).
func (r *msgReader) entries() []*Log {
	bd := r.next()
	var n int
	switch {
	case bd == mpNil:
		return nil
	case bd >= 0x90 && bd <= 0x9f:
		n = int(bd & 0x0f)
	case bd == mpArray16:
		n = int(r.be(2))
	case bd == mpArray32:
		n = int(r.be(4))
	default:
		r.fail("expected an array for Entries, found 0x%02x", bd)
		return nil
	}
	if r.err != nil {
		return nil
	}
	if n > maxEntriesPerMessage || n > len(r.b)-r.off {
		r.fail("%d entries in one AppendEntries", n)
		return nil
	}
	logs := make([]Log, n)
	out := make([]*Log, n)
	for i := range logs {
		if r.peek() == mpNil {
			r.next()
			continue
		}
		r.log(&logs[i])
		out[i] = &logs[i]
	}
	return out
}

// log reads one Log struct.
func (r *msgReader) log(l *Log) {
	n, positional := r.structHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch r.fieldAt(i, positional, &logFields) {
		case fIndex:
			l.Index = r.uint("Index")
		case fTerm:
			l.Term = r.uint("Term")
		case fType:
			v := r.uint("Type")
			if v > math.MaxUint8 {
				r.fail("log type %d out of range", v)
			}
			l.Type = LogType(v)
		case fData:
			l.Data = r.bytes("Data")
		case fExtensions:
			l.Extensions = r.bytes("Extensions")
		case fAppendedAt:
			l.AppendedAt = r.time()
		default:
			r.skip()
		}
	}
}
