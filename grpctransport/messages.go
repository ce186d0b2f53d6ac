package transport

import (
	"fmt"

	"github.com/seed48a2b68f/raft"
)

// The gRPC messages: each wraps a library struct (see codec.go). They are
// what the service's handlers and the client's calls hand to gRPC.

type appendEntriesRequest struct{ *raft.AppendEntriesRequest }

func (m *appendEntriesRequest) Reset()         { *m.AppendEntriesRequest = raft.AppendEntriesRequest{} }
func (m *appendEntriesRequest) String() string { return fmt.Sprintf("%+v", m.AppendEntriesRequest) }
func (*appendEntriesRequest) ProtoMessage()    {}
func (m *appendEntriesRequest) Marshal() ([]byte, error) {
	return marshalAppendEntriesRequest(m.AppendEntriesRequest)
}
func (m *appendEntriesRequest) Unmarshal(b []byte) error {
	return unmarshalAppendEntriesRequest(b, m.AppendEntriesRequest)
}

type appendEntriesResponse struct{ *raft.AppendEntriesResponse }

func (m *appendEntriesResponse) Reset()         { *m.AppendEntriesResponse = raft.AppendEntriesResponse{} }
func (m *appendEntriesResponse) String() string { return fmt.Sprintf("%+v", m.AppendEntriesResponse) }
func (*appendEntriesResponse) ProtoMessage()    {}
func (m *appendEntriesResponse) Marshal() ([]byte, error) {
	return marshalAppendEntriesResponse(m.AppendEntriesResponse), nil
}
func (m *appendEntriesResponse) Unmarshal(b []byte) error {
	return unmarshalAppendEntriesResponse(b, m.AppendEntriesResponse)
}

type requestVoteRequest struct{ *raft.RequestVoteRequest }

func (m *requestVoteRequest) Reset()         { *m.RequestVoteRequest = raft.RequestVoteRequest{} }
func (m *requestVoteRequest) String() string { return fmt.Sprintf("%+v", m.RequestVoteRequest) }
func (*requestVoteRequest) ProtoMessage()    {}
func (m *requestVoteRequest) Marshal() ([]byte, error) {
	return marshalRequestVoteRequest(m.RequestVoteRequest), nil
}
func (m *requestVoteRequest) Unmarshal(b []byte) error {
	return unmarshalRequestVoteRequest(b, m.RequestVoteRequest)
}

type requestVoteResponse struct{ *raft.RequestVoteResponse }

func (m *requestVoteResponse) Reset()         { *m.RequestVoteResponse = raft.RequestVoteResponse{} }
func (m *requestVoteResponse) String() string { return fmt.Sprintf("%+v", m.RequestVoteResponse) }
func (*requestVoteResponse) ProtoMessage()    {}
func (m *requestVoteResponse) Marshal() ([]byte, error) {
	return marshalRequestVoteResponse(m.RequestVoteResponse), nil
}
func (m *requestVoteResponse) Unmarshal(b []byte) error {
	return unmarshalRequestVoteResponse(b, m.RequestVoteResponse)
}

type timeoutNowRequest struct{ *raft.TimeoutNowRequest }

func (m *timeoutNowRequest) Reset()                   { *m.TimeoutNowRequest = raft.TimeoutNowRequest{} }
func (m *timeoutNowRequest) String() string           { return fmt.Sprintf("%+v", m.TimeoutNowRequest) }
func (*timeoutNowRequest) ProtoMessage()              {}
func (m *timeoutNowRequest) Marshal() ([]byte, error) { return marshalHeaderOnly(&m.RPCHeader), nil }
func (m *timeoutNowRequest) Unmarshal(b []byte) error { return unmarshalHeaderOnly(b, &m.RPCHeader) }

type timeoutNowResponse struct{ *raft.TimeoutNowResponse }

func (m *timeoutNowResponse) Reset()                   { *m.TimeoutNowResponse = raft.TimeoutNowResponse{} }
func (m *timeoutNowResponse) String() string           { return fmt.Sprintf("%+v", m.TimeoutNowResponse) }
func (*timeoutNowResponse) ProtoMessage()              {}
func (m *timeoutNowResponse) Marshal() ([]byte, error) { return marshalHeaderOnly(&m.RPCHeader), nil }
func (m *timeoutNowResponse) Unmarshal(b []byte) error { return unmarshalHeaderOnly(b, &m.RPCHeader) }

// installSnapshotRequest is one message of the InstallSnapshot stream: the
// first carries the metadata in req (and maybe data); later ones carry data
// only. On the receiving side, Unmarshal fills req's fields present in the
// message and sets data (aliasing gRPC's buffer until the next receive).
type installSnapshotRequest struct {
	req   *raft.InstallSnapshotRequest
	first bool // sending: this message carries the metadata
	data  []byte
}

func (m *installSnapshotRequest) Reset() { m.data = nil }
func (m *installSnapshotRequest) String() string {
	return fmt.Sprintf("%+v (%d bytes)", m.req, len(m.data))
}
func (*installSnapshotRequest) ProtoMessage() {}
func (m *installSnapshotRequest) Marshal() ([]byte, error) {
	if m.first {
		return marshalInstallSnapshotRequest(m.req, m.data), nil
	}
	return marshalSnapshotChunk(m.data), nil
}
func (m *installSnapshotRequest) Unmarshal(b []byte) error {
	data, err := unmarshalInstallSnapshotRequest(b, m.req)
	m.data = data
	return err
}

type installSnapshotResponse struct{ *raft.InstallSnapshotResponse }

func (m *installSnapshotResponse) Reset() {
	*m.InstallSnapshotResponse = raft.InstallSnapshotResponse{}
}
func (m *installSnapshotResponse) String() string {
	return fmt.Sprintf("%+v", m.InstallSnapshotResponse)
}
func (*installSnapshotResponse) ProtoMessage() {}
func (m *installSnapshotResponse) Marshal() ([]byte, error) {
	return marshalInstallSnapshotResponse(m.InstallSnapshotResponse), nil
}
func (m *installSnapshotResponse) Unmarshal(b []byte) error {
	return unmarshalInstallSnapshotResponse(b, m.InstallSnapshotResponse)
}

type requestPreVoteRequest struct{ *raft.RequestPreVoteRequest }

func (m *requestPreVoteRequest) Reset()         { *m.RequestPreVoteRequest = raft.RequestPreVoteRequest{} }
func (m *requestPreVoteRequest) String() string { return fmt.Sprintf("%+v", m.RequestPreVoteRequest) }
func (*requestPreVoteRequest) ProtoMessage()    {}
func (m *requestPreVoteRequest) Marshal() ([]byte, error) {
	return marshalRequestPreVoteRequest(m.RequestPreVoteRequest), nil
}
func (m *requestPreVoteRequest) Unmarshal(b []byte) error {
	return unmarshalRequestPreVoteRequest(b, m.RequestPreVoteRequest)
}

type requestPreVoteResponse struct{ *raft.RequestPreVoteResponse }

func (m *requestPreVoteResponse) Reset()         { *m.RequestPreVoteResponse = raft.RequestPreVoteResponse{} }
func (m *requestPreVoteResponse) String() string { return fmt.Sprintf("%+v", m.RequestPreVoteResponse) }
func (*requestPreVoteResponse) ProtoMessage()    {}
func (m *requestPreVoteResponse) Marshal() ([]byte, error) {
	return marshalRequestPreVoteResponse(m.RequestPreVoteResponse), nil
}
func (m *requestPreVoteResponse) Unmarshal(b []byte) error {
	return unmarshalRequestPreVoteResponse(b, m.RequestPreVoteResponse)
}

type readIndexRequest struct{ *raft.ReadIndexRequest }

func (m *readIndexRequest) Reset()         { *m.ReadIndexRequest = raft.ReadIndexRequest{} }
func (m *readIndexRequest) String() string { return fmt.Sprintf("%+v", m.ReadIndexRequest) }
func (*readIndexRequest) ProtoMessage()    {}
func (m *readIndexRequest) Marshal() ([]byte, error) {
	return marshalReadIndexRequest(m.ReadIndexRequest), nil
}
func (m *readIndexRequest) Unmarshal(b []byte) error {
	return unmarshalReadIndexRequest(b, m.ReadIndexRequest)
}

type readIndexResponse struct{ *raft.ReadIndexResponse }

func (m *readIndexResponse) Reset()         { *m.ReadIndexResponse = raft.ReadIndexResponse{} }
func (m *readIndexResponse) String() string { return fmt.Sprintf("%+v", m.ReadIndexResponse) }
func (*readIndexResponse) ProtoMessage()    {}
func (m *readIndexResponse) Marshal() ([]byte, error) {
	return marshalReadIndexResponse(m.ReadIndexResponse), nil
}
func (m *readIndexResponse) Unmarshal(b []byte) error {
	return unmarshalReadIndexResponse(b, m.ReadIndexResponse)
}
