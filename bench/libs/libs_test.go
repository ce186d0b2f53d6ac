package libs

import (
	"bytes"
	"os"
	"testing"
)

func TestGeneratedIsCurrent(t *testing.T) {
	src, err := os.ReadFile(Source)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Transform(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(Generated)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go generate ./... in bench/", Generated)
	}
}
