package ocitest

import (
	"io"
	"net/http"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// TestRegistryServesTheV2API: the registry the tests start answers the
// distribution API on loopback.
func TestRegistryServesTheV2API(t *testing.T) {
	r := SharedRegistry(t)
	resp, err := http.Get("http://" + r.Host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s %s", resp.Status, body)
	}
}
