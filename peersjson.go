package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// ReadPeersJSON consumes a legacy peers.json file in the format of the old JSON
// peer store (an array of address strings) and creates a new-style
// configuration of voters whose IDs are their addresses. It is used for
// manual recovery with RecoverCluster.
func ReadPeersJSON(path string) (Configuration, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return Configuration{}, fmt.Errorf("read peers file %s: %w", path, err)
	}
	var peers []string
	dec := json.NewDecoder(bytes.NewReader(buf))
	if err := dec.Decode(&peers); err != nil {
		return Configuration{}, fmt.Errorf("decode peers file %s: %w", path, err)
	}
	var configuration Configuration
	for _, peer := range peers {
		configuration.Servers = append(configuration.Servers, Server{
			Suffrage: Voter,
			ID:       ServerID(peer),
			Address:  ServerAddress(peer),
		})
	}
	if err := checkConfiguration(configuration); err != nil {
		return Configuration{}, err
	}
	return configuration, nil
}

// configEntry is one entry of a peers.json file in the ID-aware format.
type configEntry struct {
	// ID is the ID of the server (a UUID, usually).
	ID ServerID `json:"id"`
	// Address is the host:port of the server.
	Address ServerAddress `json:"address"`
	// NonVoter controls the suffrage. We choose this sense so people
	// can leave this out and get a Voter by default.
	NonVoter bool `json:"non_voter"`
}

// ReadConfigJSON reads a peers.json file in the ID-aware format, an array of
// {"id", "address", "non_voter"} objects, and returns the Configuration it
// describes, after checking it.
func ReadConfigJSON(path string) (Configuration, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return Configuration{}, fmt.Errorf("read config file %s: %w", path, err)
	}
	var peers []configEntry
	dec := json.NewDecoder(bytes.NewReader(buf))
	if err := dec.Decode(&peers); err != nil {
		return Configuration{}, fmt.Errorf("decode config file %s: %w", path, err)
	}
	var configuration Configuration
	for _, peer := range peers {
		suffrage := Voter
		if peer.NonVoter {
			suffrage = Nonvoter
		}
		configuration.Servers = append(configuration.Servers, Server{
			Suffrage: suffrage,
			ID:       peer.ID,
			Address:  peer.Address,
		})
	}
	if err := checkConfiguration(configuration); err != nil {
		return Configuration{}, err
	}
	return configuration, nil
}
