package transport

import (
	"errors"
	"fmt"
	"time"

	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/wirecaps"
	"google.golang.org/protobuf/encoding/protowire"
)

// The wire: the protobuf messages of proto/transport.proto (Jille's
// raft-grpc-transport's, field for field), encoded and decoded here by
// hand, straight from and into the library's RPC structs, with no
// generated code and no intermediate messages.
//
// Each gRPC message type below wraps a library struct and implements the
// methods gRPC's proto codec looks for on a message that is not generated
// (Reset, String, ProtoMessage, and the Marshal/Unmarshal pair that
// protobuf-go calls instead of reflecting): the application's gRPC server
// keeps its default codec, and nothing is added to protobuf's global
// registry, so this package links beside Jille's generated code.

// Field numbers (proto/transport.proto).
const (
	fHeader = 1 // rpc_header, in every message

	fHdrProtocolVersion = 1
	fHdrID              = 2
	fHdrAddr            = 3

	fLogIndex      = 1
	fLogTerm       = 2
	fLogType       = 3
	fLogData       = 4
	fLogExtensions = 5
	fLogAppendedAt = 6

	fTsSeconds = 1
	fTsNanos   = 2

	fAETerm        = 2
	fAELeader      = 3
	fAEPrevEntry   = 4
	fAEPrevTerm    = 5
	fAEEntries     = 6
	fAECommitIndex = 7

	fAERTerm           = 2
	fAERLastLog        = 3
	fAERSuccess        = 4
	fAERNoRetryBackoff = 5

	fRVTerm         = 2
	fRVCandidate    = 3
	fRVLastLogIndex = 4
	fRVLastLogTerm  = 5
	fRVTransfer     = 6

	fRVRTerm    = 2
	fRVRPeers   = 3
	fRVRGranted = 4

	fISTerm               = 2
	fISLeader             = 3
	fISLastLogIndex       = 4
	fISLastLogTerm        = 5
	fISPeers              = 6
	fISConfiguration      = 7
	fISConfigurationIndex = 8
	fISSize               = 9
	fISData               = 10
	fISSnapshotVersion    = 11

	fISRTerm    = 2
	fISRSuccess = 3

	fPVTerm         = 2
	fPVLastLogIndex = 3
	fPVLastLogTerm  = 4

	fPVRTerm    = 2
	fPVRGranted = 3

	// This library's extensions, which Jille's transport (as any protobuf
	// decoder) skips: the capabilities a node advertises in AppendEntries
	// and their answers (sent only when set), and the ReadIndex RPC (sent
	// only to a leader that advertised it).
	fCapabilities = 100

	fRITerm        = 2
	fRIReads       = 3
	fRIConsistency = 4

	fRIRTerm  = 2
	fRIRIndex = 3
)

// maxLogType is the highest raft.LogType the wire's enum names.
const maxLogType = raft.LogConfiguration

// errBadLogType: an entry whose type the wire cannot carry (Jille's
// encoder panics on one).
var errBadLogType = errors.New("grpctransport: log type not in the wire's LogType enum")

// --- encoding ---

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return append(protowire.AppendTag(b, num, protowire.VarintType), 1)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varintFieldSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func bytesFieldSize(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func messageFieldSize(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func headerSize(h *raft.RPCHeader) int {
	return varintFieldSize(fHdrProtocolVersion, uint64(int64(h.ProtocolVersion))) +
		bytesFieldSize(fHdrID, len(h.ID)) + bytesFieldSize(fHdrAddr, len(h.Addr))
}

// appendHeader writes the rpc_header field; it is always present, as
// protobuf-go writes a set message field even when it is empty.
func appendHeader(b []byte, h *raft.RPCHeader) []byte {
	b = protowire.AppendTag(b, fHeader, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(headerSize(h)))
	b = appendVarintField(b, fHdrProtocolVersion, uint64(int64(h.ProtocolVersion)))
	b = appendBytesField(b, fHdrID, h.ID)
	return appendBytesField(b, fHdrAddr, h.Addr)
}

// timestamp is time t as google.protobuf.Timestamp's seconds and nanos. A
// zero time is sent as Jille's transport sends it (timestamppb.New of the
// zero time: its seconds, not an absent field).
func timestamp(t time.Time) (int64, int32) {
	return t.Unix(), int32(t.Nanosecond())
}

func timestampSize(t time.Time) int {
	s, n := timestamp(t)
	return varintFieldSize(fTsSeconds, uint64(s)) + varintFieldSize(fTsNanos, uint64(int64(n)))
}

func logSize(l *raft.Log) int {
	return varintFieldSize(fLogIndex, l.Index) + varintFieldSize(fLogTerm, l.Term) +
		varintFieldSize(fLogType, uint64(l.Type)) + bytesFieldSize(fLogData, len(l.Data)) +
		bytesFieldSize(fLogExtensions, len(l.Extensions)) + messageFieldSize(fLogAppendedAt, timestampSize(l.AppendedAt))
}

func appendLog(b []byte, l *raft.Log) []byte {
	b = protowire.AppendTag(b, fAEEntries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(logSize(l)))
	b = appendVarintField(b, fLogIndex, l.Index)
	b = appendVarintField(b, fLogTerm, l.Term)
	b = appendVarintField(b, fLogType, uint64(l.Type))
	b = appendBytesField(b, fLogData, l.Data)
	b = appendBytesField(b, fLogExtensions, l.Extensions)
	b = protowire.AppendTag(b, fLogAppendedAt, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(timestampSize(l.AppendedAt)))
	s, n := timestamp(l.AppendedAt)
	b = appendVarintField(b, fTsSeconds, uint64(s))
	return appendVarintField(b, fTsNanos, uint64(int64(n)))
}

func marshalAppendEntriesRequest(r *raft.AppendEntriesRequest) ([]byte, error) {
	caps := *wirecaps.Request(r)
	size := varintFieldSize(fCapabilities, caps) + messageFieldSize(fHeader, headerSize(&r.RPCHeader)) + varintFieldSize(fAETerm, r.Term) +
		bytesFieldSize(fAELeader, len(r.Leader)) + varintFieldSize(fAEPrevEntry, r.PrevLogEntry) +
		varintFieldSize(fAEPrevTerm, r.PrevLogTerm) + varintFieldSize(fAECommitIndex, r.LeaderCommitIndex)
	for _, l := range r.Entries {
		if l == nil {
			return nil, errors.New("grpctransport: nil log entry")
		}
		if l.Type > maxLogType {
			return nil, fmt.Errorf("%w: entry %d has type %d", errBadLogType, l.Index, l.Type)
		}
		size += messageFieldSize(fAEEntries, logSize(l))
	}
	b := make([]byte, 0, size)
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fAETerm, r.Term)
	b = appendBytesField(b, fAELeader, r.Leader)
	b = appendVarintField(b, fAEPrevEntry, r.PrevLogEntry)
	b = appendVarintField(b, fAEPrevTerm, r.PrevLogTerm)
	for _, l := range r.Entries {
		b = appendLog(b, l)
	}
	b = appendVarintField(b, fAECommitIndex, r.LeaderCommitIndex)
	return appendVarintField(b, fCapabilities, caps), nil
}

func marshalAppendEntriesResponse(r *raft.AppendEntriesResponse) []byte {
	b := make([]byte, 0, 32+len(r.ID)+len(r.Addr))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fAERTerm, r.Term)
	b = appendVarintField(b, fAERLastLog, r.LastLog)
	b = appendBoolField(b, fAERSuccess, r.Success)
	b = appendBoolField(b, fAERNoRetryBackoff, r.NoRetryBackoff)
	return appendVarintField(b, fCapabilities, *wirecaps.Response(r))
}

func marshalReadIndexRequest(r *raft.ReadIndexRequest) []byte {
	b := make([]byte, 0, 40+len(r.ID)+len(r.Addr))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fRITerm, r.Term)
	b = appendVarintField(b, fRIReads, r.Reads)
	return appendVarintField(b, fRIConsistency, uint64(r.Consistency))
}

func marshalReadIndexResponse(r *raft.ReadIndexResponse) []byte {
	b := make([]byte, 0, 32+len(r.ID)+len(r.Addr))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fRIRTerm, r.Term)
	return appendVarintField(b, fRIRIndex, r.Index)
}

func marshalRequestVoteRequest(r *raft.RequestVoteRequest) []byte {
	b := make([]byte, 0, 48+len(r.ID)+len(r.Addr)+len(r.Candidate))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fRVTerm, r.Term)
	b = appendBytesField(b, fRVCandidate, r.Candidate)
	b = appendVarintField(b, fRVLastLogIndex, r.LastLogIndex)
	b = appendVarintField(b, fRVLastLogTerm, r.LastLogTerm)
	return appendBoolField(b, fRVTransfer, r.LeadershipTransfer)
}

func marshalRequestVoteResponse(r *raft.RequestVoteResponse) []byte {
	b := make([]byte, 0, 32+len(r.ID)+len(r.Addr)+len(r.Peers))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fRVRTerm, r.Term)
	b = appendBytesField(b, fRVRPeers, r.Peers)
	return appendBoolField(b, fRVRGranted, r.Granted)
}

func marshalHeaderOnly(h *raft.RPCHeader) []byte {
	return appendHeader(make([]byte, 0, 16+len(h.ID)+len(h.Addr)), h)
}

// marshalInstallSnapshotRequest encodes the stream's first message: the
// metadata and, when given, a first chunk of data.
func marshalInstallSnapshotRequest(r *raft.InstallSnapshotRequest, data []byte) []byte {
	b := make([]byte, 0, 96+len(r.ID)+len(r.Addr)+len(r.Leader)+len(r.Peers)+len(r.Configuration)+len(data))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fISTerm, r.Term)
	b = appendBytesField(b, fISLeader, r.Leader)
	b = appendVarintField(b, fISLastLogIndex, r.LastLogIndex)
	b = appendVarintField(b, fISLastLogTerm, r.LastLogTerm)
	b = appendBytesField(b, fISPeers, r.Peers)
	b = appendBytesField(b, fISConfiguration, r.Configuration)
	b = appendVarintField(b, fISConfigurationIndex, r.ConfigurationIndex)
	b = appendVarintField(b, fISSize, uint64(r.Size))
	b = appendBytesField(b, fISData, data)
	return appendVarintField(b, fISSnapshotVersion, uint64(int64(r.SnapshotVersion)))
}

// marshalSnapshotChunk encodes a later message of the stream: data only.
func marshalSnapshotChunk(data []byte) []byte {
	return appendBytesField(make([]byte, 0, len(data)+8), fISData, data)
}

func marshalInstallSnapshotResponse(r *raft.InstallSnapshotResponse) []byte {
	b := make([]byte, 0, 24+len(r.ID)+len(r.Addr))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fISRTerm, r.Term)
	return appendBoolField(b, fISRSuccess, r.Success)
}

func marshalRequestPreVoteRequest(r *raft.RequestPreVoteRequest) []byte {
	b := make([]byte, 0, 40+len(r.ID)+len(r.Addr))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fPVTerm, r.Term)
	b = appendVarintField(b, fPVLastLogIndex, r.LastLogIndex)
	return appendVarintField(b, fPVLastLogTerm, r.LastLogTerm)
}

func marshalRequestPreVoteResponse(r *raft.RequestPreVoteResponse) []byte {
	b := make([]byte, 0, 24+len(r.ID)+len(r.Addr))
	b = appendHeader(b, &r.RPCHeader)
	b = appendVarintField(b, fPVRTerm, r.Term)
	return appendBoolField(b, fPVRGranted, r.Granted)
}

// --- decoding ---

// reader walks the fields of one message. Every method stops at the first
// error, which err reports; values read after it are zero.
type reader struct {
	b   []byte
	err error
}

// next returns the next field's number and type, or false at the end or
// on an error.
func (r *reader) next() (protowire.Number, protowire.Type, bool) {
	if r.err != nil || len(r.b) == 0 {
		return 0, 0, false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		r.fail(protowire.ParseError(n))
		return 0, 0, false
	}
	r.b = r.b[n:]
	return num, typ, true
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("grpctransport: malformed message: %w", err)
	}
}

func (r *reader) varint(typ protowire.Type) uint64 {
	if typ != protowire.VarintType {
		r.fail(fmt.Errorf("wire type %d where a varint belongs", typ))
		return 0
	}
	v, n := protowire.ConsumeVarint(r.b)
	if n < 0 {
		r.fail(protowire.ParseError(n))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bool(typ protowire.Type) bool { return r.varint(typ) != 0 }

// bytes returns the field's bytes, aliasing the message's buffer.
func (r *reader) bytes(typ protowire.Type) []byte {
	if typ != protowire.BytesType {
		r.fail(fmt.Errorf("wire type %d where bytes belong", typ))
		return nil
	}
	v, n := protowire.ConsumeBytes(r.b)
	if n < 0 {
		r.fail(protowire.ParseError(n))
		return nil
	}
	r.b = r.b[n:]
	return v
}

// ownBytes returns a copy of the field's bytes (nil when empty), for
// values kept beyond the buffer's life.
func (r *reader) ownBytes(typ protowire.Type) []byte {
	v := r.bytes(typ)
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (r *reader) skip(num protowire.Number, typ protowire.Type) {
	n := protowire.ConsumeFieldValue(num, typ, r.b)
	if n < 0 {
		r.fail(protowire.ParseError(n))
		return
	}
	r.b = r.b[n:]
}

// fields walks the fields of b, giving each to field, which reports
// whether it knew the field; unknown fields are skipped.
func fields(b []byte, field func(r *reader, num protowire.Number, t protowire.Type) bool) error {
	r := reader{b: b}
	for {
		num, t, ok := r.next()
		if !ok {
			return r.err
		}
		if !field(&r, num, t) {
			r.skip(num, t)
		}
	}
}

// sub walks the fields of an embedded message.
func (r *reader) sub(typ protowire.Type, field func(r *reader, num protowire.Number, t protowire.Type) bool) {
	b := r.bytes(typ)
	if r.err != nil {
		return
	}
	if err := fields(b, field); err != nil {
		r.fail(err)
	}
}

func (r *reader) header(typ protowire.Type, h *raft.RPCHeader) {
	r.sub(typ, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHdrProtocolVersion:
			h.ProtocolVersion = raft.ProtocolVersion(int64(r.varint(t)))
		case fHdrID:
			h.ID = r.ownBytes(t)
		case fHdrAddr:
			h.Addr = r.ownBytes(t)
		default:
			return false
		}
		return true
	})
}

func (r *reader) timestamp(typ protowire.Type) time.Time {
	// A plain loop, not fields: this runs once per entry.
	sub := reader{b: r.bytes(typ)}
	var s int64
	var n int32
	for {
		num, t, ok := sub.next()
		if !ok {
			break
		}
		switch num {
		case fTsSeconds:
			s = int64(sub.varint(t))
		case fTsNanos:
			n = int32(sub.varint(t))
		default:
			sub.skip(num, t)
		}
	}
	if sub.err != nil {
		r.fail(sub.err)
		return time.Time{}
	}
	if r.err != nil {
		return time.Time{}
	}
	if n < 0 || n > 999_999_999 {
		r.fail(fmt.Errorf("timestamp nanos %d out of range", n))
		return time.Time{}
	}
	return time.Unix(s, int64(n)).UTC()
}

// unmarshalAppendEntriesRequest is the hot decoder: it copies the message
// once and lets every byte field (entries' data included) alias that copy,
// and it allocates the entries in one slab, counted first.
func unmarshalAppendEntriesRequest(b []byte, out *raft.AppendEntriesRequest) error {
	*out = raft.AppendEntriesRequest{}
	own := append([]byte(nil), b...)
	n, err := countField(own, fAEEntries)
	if err != nil {
		return err
	}
	var slab []raft.Log
	if n > 0 {
		slab = make([]raft.Log, 0, n)
		out.Entries = make([]*raft.Log, 0, n)
	}
	r := reader{b: own}
	for {
		num, t, ok := r.next()
		if !ok {
			return r.err
		}
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
			// The header's bytes were copied by header; nothing aliases own.
		case fAETerm:
			out.Term = r.varint(t)
		case fAELeader:
			out.Leader = nilIfEmpty(r.bytes(t))
		case fAEPrevEntry:
			out.PrevLogEntry = r.varint(t)
		case fAEPrevTerm:
			out.PrevLogTerm = r.varint(t)
		case fAEEntries:
			slab = append(slab, raft.Log{})
			l := &slab[len(slab)-1]
			if err := decodeLog(r.bytes(t), l); err != nil {
				r.fail(err)
			}
			out.Entries = append(out.Entries, l)
		case fAECommitIndex:
			out.LeaderCommitIndex = r.varint(t)
		case fCapabilities:
			*wirecaps.Request(out) = r.varint(t)
		default:
			r.skip(num, t)
		}
	}
}

// countField counts the occurrences of field num at the top level of b.
func countField(b []byte, num protowire.Number) (int, error) {
	r := reader{b: b}
	n := 0
	for {
		f, t, ok := r.next()
		if !ok {
			return n, r.err
		}
		if f == num {
			n++
		}
		r.skip(f, t)
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// decodeLog decodes one entry; its byte fields alias b.
func decodeLog(b []byte, l *raft.Log) error {
	r := reader{b: b}
	for {
		num, t, ok := r.next()
		if !ok {
			return r.err
		}
		switch num {
		case fLogIndex:
			l.Index = r.varint(t)
		case fLogTerm:
			l.Term = r.varint(t)
		case fLogType:
			v := r.varint(t)
			if v > uint64(maxLogType) {
				r.fail(fmt.Errorf("%w: %d", errBadLogType, v))
			}
			l.Type = raft.LogType(v)
		case fLogData:
			l.Data = nilIfEmpty(r.bytes(t))
		case fLogExtensions:
			l.Extensions = nilIfEmpty(r.bytes(t))
		case fLogAppendedAt:
			l.AppendedAt = r.timestamp(t)
		default:
			r.skip(num, t)
		}
	}
}

func unmarshalAppendEntriesResponse(b []byte, out *raft.AppendEntriesResponse) error {
	*out = raft.AppendEntriesResponse{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fAERTerm:
			out.Term = r.varint(t)
		case fAERLastLog:
			out.LastLog = r.varint(t)
		case fAERSuccess:
			out.Success = r.bool(t)
		case fAERNoRetryBackoff:
			out.NoRetryBackoff = r.bool(t)
		case fCapabilities:
			*wirecaps.Response(out) = r.varint(t)
		default:
			return false
		}
		return true
	})
}

func unmarshalRequestVoteRequest(b []byte, out *raft.RequestVoteRequest) error {
	*out = raft.RequestVoteRequest{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fRVTerm:
			out.Term = r.varint(t)
		case fRVCandidate:
			out.Candidate = r.ownBytes(t)
		case fRVLastLogIndex:
			out.LastLogIndex = r.varint(t)
		case fRVLastLogTerm:
			out.LastLogTerm = r.varint(t)
		case fRVTransfer:
			out.LeadershipTransfer = r.bool(t)
		default:
			return false
		}
		return true
	})
}

func unmarshalRequestVoteResponse(b []byte, out *raft.RequestVoteResponse) error {
	*out = raft.RequestVoteResponse{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fRVRTerm:
			out.Term = r.varint(t)
		case fRVRPeers:
			out.Peers = r.ownBytes(t)
		case fRVRGranted:
			out.Granted = r.bool(t)
		default:
			return false
		}
		return true
	})
}

func unmarshalHeaderOnly(b []byte, h *raft.RPCHeader) error {
	*h = raft.RPCHeader{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		if num != fHeader {
			return false
		}
		r.header(t, h)
		return true
	})
}

// unmarshalInstallSnapshotRequest decodes one message of the stream into
// out (metadata fields present overwrite out's) and returns its data,
// aliasing b.
func unmarshalInstallSnapshotRequest(b []byte, out *raft.InstallSnapshotRequest) ([]byte, error) {
	var data []byte
	err := fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fISTerm:
			out.Term = r.varint(t)
		case fISLeader:
			out.Leader = r.ownBytes(t)
		case fISLastLogIndex:
			out.LastLogIndex = r.varint(t)
		case fISLastLogTerm:
			out.LastLogTerm = r.varint(t)
		case fISPeers:
			out.Peers = r.ownBytes(t)
		case fISConfiguration:
			out.Configuration = r.ownBytes(t)
		case fISConfigurationIndex:
			out.ConfigurationIndex = r.varint(t)
		case fISSize:
			out.Size = int64(r.varint(t))
		case fISData:
			data = r.bytes(t)
		case fISSnapshotVersion:
			out.SnapshotVersion = raft.SnapshotVersion(int64(r.varint(t)))
		default:
			return false
		}
		return true
	})
	return data, err
}

func unmarshalInstallSnapshotResponse(b []byte, out *raft.InstallSnapshotResponse) error {
	*out = raft.InstallSnapshotResponse{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fISRTerm:
			out.Term = r.varint(t)
		case fISRSuccess:
			out.Success = r.bool(t)
		default:
			return false
		}
		return true
	})
}

func unmarshalRequestPreVoteRequest(b []byte, out *raft.RequestPreVoteRequest) error {
	*out = raft.RequestPreVoteRequest{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fPVTerm:
			out.Term = r.varint(t)
		case fPVLastLogIndex:
			out.LastLogIndex = r.varint(t)
		case fPVLastLogTerm:
			out.LastLogTerm = r.varint(t)
		default:
			return false
		}
		return true
	})
}

func unmarshalRequestPreVoteResponse(b []byte, out *raft.RequestPreVoteResponse) error {
	*out = raft.RequestPreVoteResponse{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fPVRTerm:
			out.Term = r.varint(t)
		case fPVRGranted:
			out.Granted = r.bool(t)
		default:
			return false
		}
		return true
	})
}

func unmarshalReadIndexRequest(b []byte, out *raft.ReadIndexRequest) error {
	*out = raft.ReadIndexRequest{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fRITerm:
			out.Term = r.varint(t)
		case fRIReads:
			out.Reads = r.varint(t)
		case fRIConsistency:
			out.Consistency = raft.ReadConsistency(r.varint(t))
		default:
			return false
		}
		return true
	})
}

func unmarshalReadIndexResponse(b []byte, out *raft.ReadIndexResponse) error {
	*out = raft.ReadIndexResponse{}
	return fields(b, func(r *reader, num protowire.Number, t protowire.Type) bool {
		switch num {
		case fHeader:
			r.header(t, &out.RPCHeader)
		case fRIRTerm:
			out.Term = r.varint(t)
		case fRIRIndex:
			out.Index = r.varint(t)
		default:
			return false
		}
		return true
	})
}
