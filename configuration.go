package raft

import (
	"errors"
	"fmt"
)

// ServerSuffrage says whether a member of a Configuration votes.
type ServerSuffrage int

// The numbers are stored in configurations, so they are never renumbered.
const (
	// Voter votes in elections and counts toward the quorum that commits
	// entries.
	Voter ServerSuffrage = iota
	// Nonvoter receives the log but neither votes nor counts toward
	// commitment.
	Nonvoter
	// Staging behaves as Nonvoter. Deprecated: AddVoter adds a Voter
	// directly.
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
	case JointIncoming:
		return "JointIncoming"
	case JointOutgoing:
		return "JointOutgoing"
	case JointDemoting:
		return "JointDemoting"
	}
	return "ServerSuffrage"
}

// ServerID names a server; it must never be reused for another one.
type ServerID string

// ServerAddress is where a transport reaches a server (host:port for TCP).
type ServerAddress string

// Server is one member of a Configuration.
type Server struct {
	// Suffrage says whether it votes.
	Suffrage ServerSuffrage
	// ID is its permanent, unique name.
	ID ServerID
	// Address is where the transport reaches it.
	Address ServerAddress
}

// Configuration is the membership of the cluster: every server, the local
// one included when it is a member, each listed once in any order, with
// its suffrage.
type Configuration struct {
	Servers []Server
}

// Clone returns a copy that shares no memory with c.
func (c *Configuration) Clone() (copy Configuration) {
	if c.Servers != nil {
		copy.Servers = append(make([]Server, 0, len(c.Servers)), c.Servers...)
	}
	return
}

// ConfigurationChangeCommand is the kind of a membership change.
type ConfigurationChangeCommand uint8

const (
	// AddVoter makes a server a voter, adding it if absent.
	AddVoter ConfigurationChangeCommand = iota
	// AddNonvoter adds a server without a vote; a server that already has
	// one keeps it.
	AddNonvoter
	// DemoteVoter takes a member's vote away; it stays a member.
	DemoteVoter
	// RemoveServer takes a server out of the configuration.
	RemoveServer
	// Promote turned a Staging server into a Voter. Deprecated.
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

// configurationChangeRequest is one membership change asked of the leader.
type configurationChangeRequest struct {
	command       ConfigurationChangeCommand
	serverID      ServerID
	serverAddress ServerAddress // only present for AddVoter, AddNonvoter
	// prevIndex, when nonzero, makes the change conditional: the latest
	// configuration must be the one at this index.
	prevIndex uint64
	// next, when set, is a ChangeConfiguration request: the configuration
	// to move to (command and server are unused).
	next *Configuration
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

// hasVote reports whether id votes in configuration (in a joint one: in
// either half).
func hasVote(configuration Configuration, id ServerID) bool {
	for _, s := range configuration.Servers {
		if s.ID == id {
			return isVoterSuffrage(s.Suffrage)
		}
	}
	return false
}

// mayCampaign reports whether id may stand for election under c: it votes
// in the latest configuration, or the latest is uncommitted and it votes in
// the committed one. The second case keeps a cluster live when the only
// servers holding the newest entries are those an uncommitted change
// demotes or removes (the final configuration of a joint change that
// reached them but not the new voters): one of them is elected by the
// latest configuration's voters, commits the change and steps down. Its
// own vote does not count under the latest configuration, so the election
// is as safe as any other.
func mayCampaign(c configurations, id ServerID) bool {
	return hasVote(c.latest, id) || c.latestIndex > c.committedIndex && hasVote(c.committed, id)
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

// voters returns the IDs of the voters (in a joint configuration: of both
// halves).
func voters(configuration Configuration) []ServerID {
	var ids []ServerID
	for _, s := range configuration.Servers {
		if isVoterSuffrage(s.Suffrage) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// checkConfiguration refuses a configuration with an empty or repeated ID
// or address, or without a voter.
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
		switch server.Suffrage {
		case Voter:
			voters++
		case Nonvoter, Staging:
		case JointIncoming, JointOutgoing, JointDemoting:
			return fmt.Errorf("server %v: suffrage %v belongs to a joint configuration, which only ChangeConfiguration writes", server.ID, server.Suffrage)
		default:
			return fmt.Errorf("server %v: unknown suffrage %d", server.ID, int(server.Suffrage))
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
	if isJoint(current) {
		return Configuration{}, errConfigurationInJoint
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

// EncodeConfiguration returns the msgpack form of a Configuration, as stored
// in configuration log entries. It panics on an encoding error, which a
// Configuration value cannot cause.
func EncodeConfiguration(configuration Configuration) []byte {
	buf, err := encodeMsgPack(configuration)
	if err != nil {
		panic(fmt.Errorf("failed to encode configuration: %v", err))
	}
	return buf
}

// DecodeConfiguration reads the msgpack form of a Configuration and panics
// if the bytes are not one, like hashicorp/raft's. The library never calls
// it on bytes from a peer or a disk; it decodes those with a function that
// returns an error instead.
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
