package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wcphall/hall/host"
)

// Open the stores once and give them to the Hall (and their tokens to
// host/server): the CLI and the HTTP API reach the state the same way.
func ExampleOpenLocalStores() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st, err := host.OpenLocalStores(filepath.Join(dir, ".hall"), host.LocalStoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close() // after the Hall: the stores are the caller's
	h, err := host.Open(ctx, host.Options{Dir: dir, Stores: st})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close(ctx)
	_, tok, err := st.Tokens.Create(ctx, host.TokenScope{Tenant: "org.acme"}, "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("token scope:", tok.Scope)
	// Output: token scope: tenant:org.acme
}
