package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
)

func TestOnChangeAfterEnrollAndRules(t *testing.T) {
	h := newHall(t, host.Options{})
	changed := make(chan struct{}, 8)
	cancel := h.OnChange(func() { changed <- struct{}{} })
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no change notification after %s", what)
		}
	}
	if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny2", "wrk.test.tiny", "cap.test.tiny", "")}); err != nil {
		t.Fatal(err)
	}
	wait("an enrollment")
	if _, _, err := h.ReplaceRules(context.Background(), []byte(rules), "", "test"); err != nil {
		t.Fatal(err)
	}
	wait("a rules replacement")
	cancel()
	if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny3", "wrk.test.tiny", "cap.test.tiny", "")}); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		t.Fatal("notified after cancel")
	default:
	}
}
