package raft

import (
	"errors"
	"fmt"
)

// ServerSuffrage determines whether a Server in a Configuration gets a vote.
type ServerSuffrage int

// The numbers are stored in configurations, so they are never renumbered.
const (
	// Voter is a server whose vote is counted in elections and whose match
	// index is used in advancing the leader's commit index.
	Voter ServerSuffrage = iota
	// Nonvoter is a server that receives log entries but is not considered
	// for elections or commitment purposes.
	Nonvoter
	// Staging is a server that acts like a Nonvoter. Deprecated: AddVoter
	// adds a Voter directly.
	Staging
)

// String returns the suffrage's name.
func (s ServerSuffrage) String() string {
	switch s {
	case Voter:
		return "Voter"
	case Nonvoter:
		return "Nonvoter"
	case Staging:
		return "Staging"
	}
	return "ServerSuffrage"
}

// ServerID is a unique string identifying a server for all time.
type ServerID string

// ServerAddress is a network address for a server that a transport can
// contact.
type ServerAddress string

// Server tracks the information about a single server in a configuration.
type Server struct {
	// Suffrage determines whether the server gets a vote.
	Suffrage ServerSuffrage
	// ID is a unique string identifying this server for all time.
	ID ServerID
	// Address is its network address that a transport can contact.
	Address ServerAddress
}

// Configuration tracks which servers are in the cluster, and whether they have
// votes. This should include the local server, if it's a member of the
// cluster. The servers are listed no particular order, but each should only
// appear once.
type Configuration struct {
	Servers []Server
}

// Clone makes a deep copy of a Configuration.
func (c *Configuration) Clone() (copy Configuration) {
	if c.Servers != nil {
		copy.Servers = append(make([]Server, 0, len(c.Servers)), c.Servers...)
	}
	return
}

// ConfigurationChangeCommand is the different ways to change the cluster
// configuration.
type ConfigurationChangeCommand uint8

const (
	// AddVoter adds a server with Suffrage of Voter.
	AddVoter ConfigurationChangeCommand = iota
	// AddNonvoter makes a server Nonvoter unless its Staging or Voter.
	AddNonvoter
	// DemoteVoter makes a server Nonvoter unless its absent.
	DemoteVoter
	// RemoveServer removes a server entirely from the cluster membership.
	RemoveServer
	// Promote changes a server from Staging to Voter. Deprecated.
	Promote
	// AddStaging is a deprecated alias of AddVoter.
	AddStaging = 0
)

// String returns the command's name.
func (c ConfigurationChangeCommand) String() string {
	switch c {
	case AddVoter:
		return "AddVoter"
	case AddNonvoter:
		return "AddNonvoter"
	case DemoteVoter:
		return "DemoteVoter"
	case RemoveServer:
		return "RemoveServer"
	case Promote:
		return "Promote"
	}
	return "ConfigurationChangeCommand"
}

// configurationChangeRequest describes a change that a leader would like to
// make to its current configuration.
type configurationChangeRequest struct {
	command       ConfigurationChangeCommand
	serverID      ServerID
	serverAddress ServerAddress // only present for AddVoter, AddNonvoter
	// prevIndex, if nonzero, is the index of the only configuration upon
	// which this change may be applied.
	prevIndex uint64
}

// configurations is the pair of configurations a node tracks: the latest one
// in its log (which it uses, committed or not) and the latest committed one.
type configurations struct {
	committed      Configuration
	committedIndex uint64
	latest         Configuration
	latestIndex    uint64
}

// Clone makes a deep copy.
func (c *configurations) Clone() configurations {
	return configurations{
		committed:      c.committed.Clone(),
		committedIndex: c.committedIndex,
		latest:         c.latest.Clone(),
		latestIndex:    c.latestIndex,
	}
}

// hasVote reports whether id is a Voter in configuration.
func hasVote(configuration Configuration, id ServerID) bool {
	for _, s := range configuration.Servers {
		if s.ID == id {
			return s.Suffrage == Voter
		}
	}
	return false
}

// inConfiguration reports whether id is in configuration, with any suffrage.
func inConfiguration(configuration Configuration, id ServerID) bool {
	for _, s := range configuration.Servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

// voters returns the IDs of the voters.
func voters(configuration Configuration) []ServerID {
	var ids []ServerID
	for _, s := range configuration.Servers {
		if s.Suffrage == Voter {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// quorumSize returns the number of votes that make a majority of voters.
func quorumSize(configuration Configuration) int {
	return len(voters(configuration))/2 + 1
}

// checkConfiguration tests a cluster membership configuration for common
// errors: empty or duplicate IDs and addresses, and no voter at all.
func checkConfiguration(configuration Configuration) error {
	idSet := make(map[ServerID]bool)
	addressSet := make(map[ServerAddress]bool)
	var voters int
	for _, server := range configuration.Servers {
		if server.ID == "" {
			return fmt.Errorf("empty ID in configuration: %v", configuration)
		}
		if server.Address == "" {
			return fmt.Errorf("empty address in configuration: %v", server)
		}
		if idSet[server.ID] {
			return fmt.Errorf("found duplicate ID in configuration: %v", server.ID)
		}
		idSet[server.ID] = true
		if addressSet[server.Address] {
			return fmt.Errorf("found duplicate address in configuration: %v", server.Address)
		}
		addressSet[server.Address] = true
		if server.Suffrage == Voter {
			voters++
		}
	}
	if voters == 0 {
		return fmt.Errorf("need at least one voter in configuration: %v", configuration)
	}
	return nil
}

// nextConfiguration computes the configuration that results from applying
// change to current, whose log index is currentIndex. It is a pure function
// with hashicorp/raft's semantics: AddVoter makes a voter at once (there is no
// staging step), AddNonvoter never demotes a voter, and the result must pass
// checkConfiguration.
func nextConfiguration(current Configuration, currentIndex uint64, change configurationChangeRequest) (Configuration, error) {
	if change.prevIndex > 0 && change.prevIndex != currentIndex {
		return Configuration{}, fmt.Errorf("configuration changed since %v (latest is %v)", change.prevIndex, currentIndex)
	}

	configuration := current.Clone()
	find := func() int {
		for i, s := range configuration.Servers {
			if s.ID == change.serverID {
				return i
			}
		}
		return -1
	}
	i := find()
	switch change.command {
	case AddVoter:
		newServer := Server{Suffrage: Voter, ID: change.serverID, Address: change.serverAddress}
		switch {
		case i < 0:
			configuration.Servers = append(configuration.Servers, newServer)
		case configuration.Servers[i].Suffrage == Voter:
			configuration.Servers[i].Address = change.serverAddress
		default:
			configuration.Servers[i] = newServer
		}
	case AddNonvoter:
		newServer := Server{Suffrage: Nonvoter, ID: change.serverID, Address: change.serverAddress}
		switch {
		case i < 0:
			configuration.Servers = append(configuration.Servers, newServer)
		case configuration.Servers[i].Suffrage != Nonvoter:
			configuration.Servers[i].Address = change.serverAddress
		default:
			configuration.Servers[i] = newServer
		}
	case DemoteVoter:
		if i >= 0 {
			configuration.Servers[i].Suffrage = Nonvoter
		}
	case RemoveServer:
		if i >= 0 {
			configuration.Servers = append(configuration.Servers[:i], configuration.Servers[i+1:]...)
		}
	case Promote:
		if i >= 0 && configuration.Servers[i].Suffrage == Staging {
			configuration.Servers[i].Suffrage = Voter
		}
	default:
		return Configuration{}, fmt.Errorf("unknown configuration change command %d", change.command)
	}

	if err := checkConfiguration(configuration); err != nil {
		return Configuration{}, err
	}
	return configuration, nil
}

// encodePeers serializes the voters of a Configuration into the legacy peers
// format: a msgpack array of encoded addresses. A nil trans (snapshot
// stores are given one by callers outside the library) encodes each address
// as its bytes, as every transport of this library and hashicorp's does.
func encodePeers(configuration Configuration, trans Transport) []byte {
	var encPeers [][]byte
	for _, server := range configuration.Servers {
		if server.Suffrage != Voter {
			continue
		}
		if trans == nil {
			encPeers = append(encPeers, []byte(server.Address))
		} else {
			encPeers = append(encPeers, trans.EncodePeer(server.ID, server.Address))
		}
	}
	buf, err := encodeMsgPack(encPeers)
	if err != nil {
		// An array of byte strings always encodes.
		panic(fmt.Errorf("failed to encode peers: %v", err))
	}
	return buf
}

// decodePeers deserializes the legacy peers format into a Configuration of
// voters whose IDs are their addresses.
func decodePeers(buf []byte, trans Transport) (Configuration, error) {
	var encPeers [][]byte
	if err := decodeMsgPack(buf, &encPeers); err != nil {
		return Configuration{}, fmt.Errorf("failed to decode peers: %w", err)
	}
	var servers []Server
	for _, enc := range encPeers {
		p := trans.DecodePeer(enc)
		servers = append(servers, Server{Suffrage: Voter, ID: ServerID(p), Address: p})
	}
	return Configuration{Servers: servers}, nil
}

// EncodeConfiguration serializes a Configuration using MsgPack, or panics on
// errors (which cannot happen for a Configuration value).
func EncodeConfiguration(configuration Configuration) []byte {
	buf, err := encodeMsgPack(configuration)
	if err != nil {
		panic(fmt.Errorf("failed to encode configuration: %v", err))
	}
	return buf
}

// DecodeConfiguration deserializes a Configuration using MsgPack, or panics on
// errors, as hashicorp/raft's does. The library itself never calls it on bytes
// from the network or disk; it uses an error-returning decoder instead.
func DecodeConfiguration(buf []byte) Configuration {
	c, err := decodeConfiguration(buf)
	if err != nil {
		panic(err)
	}
	return c
}

var errEmptyConfiguration = errors.New("empty configuration bytes")

// decodeConfiguration is DecodeConfiguration without the panic.
func decodeConfiguration(buf []byte) (Configuration, error) {
	var configuration Configuration
	if len(buf) == 0 {
		return configuration, fmt.Errorf("failed to decode configuration: %w", errEmptyConfiguration)
	}
	if err := decodeMsgPack(buf, &configuration); err != nil {
		return Configuration{}, fmt.Errorf("failed to decode configuration: %w", err)
	}
	return configuration, nil
}
