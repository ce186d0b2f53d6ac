// Package autopilot keeps a Raft cluster's membership healthy: it is
// hashicorp/raft-autopilot's API (v0.3.0) on this library, so a program
// using that module moves here by changing its import paths.
//
// An Autopilot made with New watches every server's health (the
// application says whether it is alive; its Raft statistics say whether it
// hears from the leader, is on the leader's term and keeps up with its
// log), promotes nonvoters that have been healthy for
// ServerStabilizationTime (the default StablePromoter), makes a promoter's
// demotions and leadership moves, and removes dead servers when
// CleanupDeadServers is set, never leaving fewer than MinQuorum potential
// voters nor removing half the voters or more in one round.
//
// Beyond raft-autopilot: when the Raft it is given has ChangeConfiguration
// (a *raft.Raft of this library), the promotions and demotions of one round,
// and the removals of servers the application no longer knows, are made in
// one joint configuration change instead of one server at a time; when a
// member cannot take part in one (a hashicorp/raft node), it goes one
// server at a time as raft-autopilot does. The testify mocks of
// raft-autopilot are not provided.
package autopilot
