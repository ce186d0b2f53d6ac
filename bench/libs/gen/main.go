// Command gen writes libs/hashi/cluster.go from libs/ours/cluster.go.
package main

import (
	"log"
	"os"

	"github.com/seed48a2b68f/raft/bench/libs"
)

func main() {
	src, err := os.ReadFile(libs.Source)
	if err != nil {
		log.Fatal(err)
	}
	out, err := libs.Transform(src)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(libs.Generated, out, 0o644); err != nil {
		log.Fatal(err)
	}
}
