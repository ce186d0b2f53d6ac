package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// ReadPeersJSON reads a peers.json file in the oldest format, a JSON array
// of addresses, into a Configuration of voters whose IDs are their
// addresses, for RecoverCluster.
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
	// ID is the server's ID.
	ID ServerID `json:"id"`
	// Address is where it is reached (host:port for TCP).
	Address ServerAddress `json:"address"`
	// NonVoter is true for a member without a vote; left out, the member
	// votes.
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
