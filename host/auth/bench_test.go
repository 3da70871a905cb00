package auth

import (
	"context"
	"testing"
)

// BenchmarkAuthenticate: one valid token checked again and again, as every
// HTTP request does (the cache answers after the first).
func BenchmarkAuthenticate(b *testing.B) {
	s, err := Open(b.TempDir() + "/" + DBFile)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tok, _, err := s.Create(context.Background(), TenantScope("org.acme"), "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Authenticate(context.Background(), tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
