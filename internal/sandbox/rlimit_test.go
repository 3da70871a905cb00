package sandbox

import (
	"strings"
	"testing"
)

// TestAddressSpaceLimitGap: the compiler child runs only where its
// address-space limit is enforced (linux); elsewhere the refusal names the
// platform and the missing limit.
func TestAddressSpaceLimitGap(t *testing.T) {
	for _, tc := range []struct {
		goos, goarch string
		ok           bool
	}{
		{"linux", "amd64", true}, {"linux", "arm64", true},
		{"darwin", "arm64", false}, {"windows", "amd64", false},
	} {
		err := addressSpaceLimitGap(tc.goos, tc.goarch)
		if (err == nil) != tc.ok {
			t.Errorf("%s/%s: %v, want ok=%v", tc.goos, tc.goarch, err, tc.ok)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), tc.goos+"/"+tc.goarch) || !strings.Contains(err.Error(), "RLIMIT_AS")) {
			t.Errorf("%s/%s: the refusal names neither the platform nor the limit: %v", tc.goos, tc.goarch, err)
		}
	}
}
