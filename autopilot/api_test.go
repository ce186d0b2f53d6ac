package autopilot_test

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/autopilot"
)

// The API of hashicorp/raft-autopilot v0.3.0, name by name with its exact
// signatures: a program written for it compiles here by changing its
// import paths. (This file fails to build if any of them changes.)
var (
	_ func(autopilot.Raft, autopilot.ApplicationIntegration, ...autopilot.Option) *autopilot.Autopilot = autopilot.New
	_ func(time.Duration) autopilot.Option                                                             = autopilot.WithUpdateInterval
	_ func(time.Duration) autopilot.Option                                                             = autopilot.WithReconcileInterval
	_ func(hclog.Logger) autopilot.Option                                                              = autopilot.WithLogger
	_ func(autopilot.TimeProvider) autopilot.Option                                                    = autopilot.WithTimeProvider
	_ func(autopilot.Promoter) autopilot.Option                                                        = autopilot.WithPromoter
	_ func() autopilot.Option                                                                          = autopilot.WithReconciliationDisabled
	_ func() autopilot.Promoter                                                                        = autopilot.DefaultPromoter
	_ func([]raft.ServerID, *autopilot.State)                                                          = autopilot.SortServers
	_ func(raft.ServerID, raft.ServerID, *autopilot.State) bool                                        = autopilot.ServerLessThan

	_ func(*autopilot.Autopilot, context.Context)                                                = (*autopilot.Autopilot).Start
	_ func(*autopilot.Autopilot) <-chan struct{}                                                 = (*autopilot.Autopilot).Stop
	_ func(*autopilot.Autopilot) (autopilot.ExecutionStatus, <-chan struct{})                    = (*autopilot.Autopilot).IsRunning
	_ func(*autopilot.Autopilot) *autopilot.State                                                = (*autopilot.Autopilot).GetState
	_ func(*autopilot.Autopilot, raft.ServerID) *autopilot.ServerHealth                          = (*autopilot.Autopilot).GetServerHealth
	_ func(*autopilot.Autopilot)                                                                 = (*autopilot.Autopilot).RemoveDeadServers
	_ func(*autopilot.Autopilot)                                                                 = (*autopilot.Autopilot).EnableReconciliation
	_ func(*autopilot.Autopilot)                                                                 = (*autopilot.Autopilot).DisableReconciliation
	_ func(*autopilot.Autopilot) bool                                                            = (*autopilot.Autopilot).ReconciliationEnabled
	_ func(*autopilot.Autopilot) (int, error)                                                    = (*autopilot.Autopilot).NumVoters
	_ func(*autopilot.Autopilot, *autopilot.Server) error                                        = (*autopilot.Autopilot).AddServer
	_ func(*autopilot.Autopilot, raft.ServerID) error                                            = (*autopilot.Autopilot).RemoveServer
	_ func(*autopilot.Autopilot, context.Context) (*autopilot.State, error)                      = (*autopilot.Autopilot).ComputeState
	_ func(*autopilot.ServerHealth, time.Time, time.Duration) bool                               = (*autopilot.ServerHealth).IsStable
	_ func(*autopilot.ServerState) bool                                                          = (*autopilot.ServerState).HasVotingRights
	_ func(*autopilot.State, *autopilot.Config) time.Duration                                    = (*autopilot.State).ServerStabilizationTime
	_ func(autopilot.RaftState) bool                                                             = autopilot.RaftState.IsPotentialVoter
	_ func(*autopilot.StablePromoter, *autopilot.Config, *autopilot.State) autopilot.RaftChanges = (*autopilot.StablePromoter).CalculatePromotionsAndDemotions

	_ autopilot.Raft     = (*raft.Raft)(nil)
	_ autopilot.Promoter = (*autopilot.StablePromoter)(nil)

	_ = [...]time.Duration{autopilot.DefaultUpdateInterval, autopilot.DefaultReconcileInterval}
	_ = [...]autopilot.ExecutionStatus{autopilot.NotRunning, autopilot.Running, autopilot.ShuttingDown}
	_ = [...]autopilot.NodeStatus{autopilot.NodeUnknown, autopilot.NodeAlive, autopilot.NodeFailed, autopilot.NodeLeft}
	_ = [...]autopilot.NodeType{autopilot.NodeVoter}
	_ = [...]autopilot.RaftState{autopilot.RaftNone, autopilot.RaftLeader, autopilot.RaftVoter, autopilot.RaftNonVoter, autopilot.RaftStaging}

	_ = autopilot.Config{CleanupDeadServers: true, LastContactThreshold: 0, MaxTrailingLogs: 0, MinQuorum: 0,
		ServerStabilizationTime: 0, Ext: nil}
	_ = autopilot.Server{ID: "", Name: "", Address: "", NodeStatus: "", Version: "", Meta: nil, RaftVersion: 0,
		IsLeader: false, NodeType: "", Ext: nil}
	_ = autopilot.ServerStats{LastContact: 0, LastTerm: 0, LastIndex: 0}
	_ = autopilot.ServerHealth{Healthy: false, StableSince: time.Time{}}
	_ = autopilot.ServerState{Server: autopilot.Server{}, State: "", Stats: autopilot.ServerStats{}, Health: autopilot.ServerHealth{}}
	_ = autopilot.State{Healthy: false, FailureTolerance: 0, Servers: nil, Leader: "", Voters: nil, Ext: nil}
	_ = autopilot.FailedServers{StaleNonVoters: nil, StaleVoters: nil, FailedNonVoters: nil, FailedVoters: nil}
	_ = autopilot.RaftChanges{Promotions: nil, Demotions: nil, Leader: ""}
)
