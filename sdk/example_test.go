package sdk_test

import (
	"errors"
	"fmt"

	"github.com/wcphall/hall/sdk"
)

// A worker registers its handlers in init; the export shims (see the package
// documentation) each call sdk.Dispatch or sdk.Run in one line.
func ExampleHandle() {
	sdk.Handle("cap.example.greet", func(c *sdk.Call) error {
		var in struct {
			Name string `json:"name"`
		}
		if err := c.InputJSON(&in); err != nil {
			return err
		}
		if in.Name == "" {
			return errors.New("name is required") // fails the call: WORKER_FAILED
		}
		c.Logf(sdk.LevelInfo, "greeting %s for tenant %s", in.Name, c.Correlation().TenantID)
		return c.OutputJSON(map[string]string{"greeting": "hello " + in.Name})
	})
}

// Secret, HTTP and Emit reach the Hall; their failures are *sdk.Error values
// with stable codes.
func ExampleCall_Secret() {
	sdk.Handle("cap.example.fetch", func(c *sdk.Call) error {
		token, err := c.Secret("api_token")
		if errors.Is(err, sdk.ErrSecretNotDeclared) {
			return fmt.Errorf("add api_token to privilege_envelope.secrets_access: %w", err)
		} else if err != nil {
			return err
		}
		resp, err := c.HTTP(sdk.HTTPRequest{
			Method:  "GET",
			URL:     "https://api.example.com/v1/items",
			Headers: map[string]string{"Authorization": "Bearer " + token},
		})
		if err != nil {
			return err
		}
		if err := c.Emit(map[string]any{"event_id": "evt.example.fetched", "status": resp.Status}); err != nil {
			return err
		}
		c.Output(resp.Body)
		return nil
	})
}
