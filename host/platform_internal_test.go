package host

import (
	"strings"
	"testing"
)

// TestPlatformGap: the Hall opens its state where Unix permission bits
// are enforced, and refuses elsewhere with an error naming the platform
// and what is missing.
func TestPlatformGap(t *testing.T) {
	for _, tc := range []struct {
		goos string
		ok   bool
	}{
		{"linux", true}, {"darwin", true}, {"freebsd", true},
		{"windows", false}, {"plan9", false}, {"js", false}, {"wasip1", false},
	} {
		t.Run(tc.goos, func(t *testing.T) {
			err := platformGap(tc.goos)
			if (err == nil) != tc.ok {
				t.Fatalf("platformGap(%q) = %v, want ok=%v", tc.goos, err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), tc.goos) || !strings.Contains(err.Error(), "permission bits")) {
				t.Errorf("the refusal names neither the platform nor what is missing: %v", err)
			}
		})
	}
}
