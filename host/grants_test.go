package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
)

// TestEnrollRefusesDangerousGrants: envelopes granting the host's system
// directories or the Hall's own files are refused at enroll, each problem
// naming the field (issue 10 item 5).
func TestEnrollRefusesDangerousGrants(t *testing.T) {
	h := newHall(t, host.Options{})
	dir := h.Options().Dir
	outside := t.TempDir()
	link := filepath.Join(outside, "to-home")
	if err := os.Symlink(filepath.Join(dir, ".hall"), link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, field, path, want string
	}{
		{"root", "filesystem_reads", "/", "whole file system"},
		{"proc", "filesystem_reads", "/proc", "under /proc"},
		{"proc self", "filesystem_reads", "/proc/self", "under /proc"},
		{"sys", "filesystem_writes", "/sys/kernel", "under /sys"},
		{"dev", "filesystem_reads", "/dev", "under /dev"},
		{"state directory", "filesystem_writes", filepath.Join(dir, ".hall"), "state directory"},
		{"inside the state directory", "filesystem_writes", filepath.Join(dir, ".hall", "cache"), "state directory"},
		{"parent of the state directory", "filesystem_reads", dir, "state directory"},
		{"enrolled records", "filesystem_writes", filepath.Join(dir, "enrolled"), "enrolled records"},
		{"symlink into the state directory", "filesystem_reads", link, "state directory"},
		{"not created yet, under a link", "filesystem_writes", filepath.Join(link, "new"), "state directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := record("org.acme.grant", "wrk.test.grant", "cap.test.tiny", fmt.Sprintf(`, "privilege_envelope": {%q: [%q]}`, tc.field, tc.path))
			_, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mods.tiny, Record: rec})
			var ee *host.EnrollError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v, want an *EnrollError", err)
			}
			if !strings.Contains(err.Error(), "privilege_envelope."+tc.field+"[0]") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want field %s and %q", err, tc.field, tc.want)
			}
		})
	}
	t.Run("an ordinary directory is granted", func(t *testing.T) {
		rec := record("org.acme.grant", "wrk.test.grant", "cap.test.tiny", fmt.Sprintf(`, "privilege_envelope": {"filesystem_writes": [%q]}`, outside))
		if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mods.tiny, Record: rec}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStateDirTightened: a pre-existing state directory and files with
// loose modes are tightened to 0700/0600 on Open, and a fresh ledger is
// created 0600 (issue 10 item 10).
func TestStateDirTightened(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, ".hall")
	if err := os.MkdirAll(filepath.Join(home, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "auth.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := host.Open(context.Background(), host.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	for path, want := range map[string]os.FileMode{
		home: 0o700, filepath.Join(home, "keys"): 0o700,
		filepath.Join(home, "auth.db"): 0o600, filepath.Join(home, "hall.db"): 0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
}

// TestRunRefusedBelowFreeSpaceFloor: below the floor nothing runs and the
// error carries HALL_DISK_LOW (issue 10 item 7).
func TestRunRefusedBelowFreeSpaceFloor(t *testing.T) {
	h := newHall(t, host.Options{MinFreeDisk: 1 << 62})
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
	var de *host.DiskLowError
	if !errors.As(err, &de) || string(de.Code()) != "HALL_DISK_LOW" {
		t.Fatalf("got %v, want a DiskLowError", err)
	}
	if res == nil || res.Ran {
		t.Fatalf("result %+v: the worker must not run", res)
	}
}
