package raft

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigMatchesHashicorp(t *testing.T) {
	c := DefaultConfig()
	if c.ProtocolVersion != 3 || c.HeartbeatTimeout != time.Second || c.ElectionTimeout != time.Second ||
		c.CommitTimeout != 50*time.Millisecond || c.MaxAppendEntries != 64 || !c.ShutdownOnRemove ||
		c.TrailingLogs != 10240 || c.SnapshotInterval != 120*time.Second || c.SnapshotThreshold != 8192 ||
		c.LeaderLeaseTimeout != 500*time.Millisecond || c.LogLevel != "DEBUG" || c.PreVoteDisabled || c.BatchApplyCh {
		t.Fatalf("DefaultConfig differs from hashicorp/raft's: %+v", c)
	}
}

func TestValidateConfigChecksInOrder(t *testing.T) {
	valid := func() *Config { c := DefaultConfig(); c.LocalID = "x"; return c }
	if err := ValidateConfig(valid()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.ProtocolVersion = 0 }, "ProtocolVersion 0 must be >= 1 and <= 3"},
		{func(c *Config) { c.ProtocolVersion = 4 }, "ProtocolVersion 4 must be >= 1 and <= 3"},
		{func(c *Config) { c.LocalID = "" }, "LocalID cannot be empty"},
		{func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout is too low"},
		{func(c *Config) { c.ElectionTimeout = time.Millisecond }, "ElectionTimeout is too low"},
		{func(c *Config) { c.CommitTimeout = time.Microsecond }, "CommitTimeout is too low"},
		{func(c *Config) { c.MaxAppendEntries = 0 }, "MaxAppendEntries must be positive"},
		{func(c *Config) { c.MaxAppendEntries = 1025 }, "MaxAppendEntries is too large"},
		{func(c *Config) { c.SnapshotInterval = time.Millisecond }, "SnapshotInterval is too low"},
		{func(c *Config) { c.LeaderLeaseTimeout = time.Millisecond }, "LeaderLeaseTimeout is too low"},
		{func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second }, "LeaderLeaseTimeout (2s) cannot be larger than heartbeat timeout (1s)"},
		{func(c *Config) { c.ElectionTimeout = 500 * time.Millisecond }, "ElectionTimeout (500ms) must be equal or greater than Heartbeat Timeout (1s)"},
		// Order: the protocol check comes before the ID check.
		{func(c *Config) { c.ProtocolVersion = 9; c.LocalID = "" }, "ProtocolVersion 9"},
	}
	for _, tc := range cases {
		c := valid()
		tc.mut(c)
		err := ValidateConfig(c)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("ValidateConfig = %v, want %q", err, tc.want)
		}
	}
}

func TestErrorTextsMatchHashicorp(t *testing.T) {
	want := map[error]string{
		ErrLeader:                          "node is the leader",
		ErrNotLeader:                       "node is not the leader",
		ErrNotVoter:                        "node is not a voter",
		ErrLeadershipLost:                  "leadership lost while committing log",
		ErrAbortedByRestore:                "snapshot restored while committing log",
		ErrRaftShutdown:                    "raft is already shutdown",
		ErrEnqueueTimeout:                  "timed out enqueuing operation",
		ErrNothingNewToSnapshot:            "nothing new to snapshot",
		ErrUnsupportedProtocol:             "operation not supported with current protocol version",
		ErrCantBootstrap:                   "bootstrap only works on new clusters",
		ErrLeadershipTransferInProgress:    "leadership transfer in progress",
		ErrTransportShutdown:               "transport shutdown",
		ErrPipelineShutdown:                "append pipeline closed",
		ErrLogNotFound:                     "log not found",
		ErrPipelineReplicationNotSupported: "pipeline replication not supported",
		ErrIncompatibleLogStore:            "log store does not implement some required methods or malformed",
	}
	for err, text := range want {
		if err.Error() != text {
			t.Errorf("%q, want %q", err.Error(), text)
		}
	}
}

func TestEnumStrings(t *testing.T) {
	if LogConfiguration.String() != "LogConfiguration" || LogType(9).String() != "9" {
		t.Fatal("LogType.String")
	}
	if Nonvoter.String() != "Nonvoter" || ServerSuffrage(7).String() != "ServerSuffrage" {
		t.Fatal("ServerSuffrage.String")
	}
	if Leader.String() != "Leader" || RaftState(9).String() != "Unknown" {
		t.Fatal("RaftState.String")
	}
	if DemoteVoter.String() != "DemoteVoter" || ConfigurationChangeCommand(9).String() != "ConfigurationChangeCommand" {
		t.Fatal("ConfigurationChangeCommand.String")
	}
	if LogCommand != 0 || LogNoop != 1 || LogBarrier != 4 || LogConfiguration != 5 || Staging != 2 || Shutdown != 3 {
		t.Fatal("enum numbers changed")
	}
}
