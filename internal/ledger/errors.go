package ledger

import "github.com/wcphall/hall/host/wcp"

// codeError is the type of the package's sentinel errors ([ErrNotFound]…):
// a stable code from wcp.Codes and, optionally, a fixed explanation. Each
// sentinel is one pointer, so errors.Is matches it through any wrapping.
type codeError struct {
	code wcp.Code
	msg  string
}

// Error returns the code, then the explanation when there is one (the
// same text the sentinels had as errors.New values).
func (e *codeError) Error() string {
	if e.msg == "" {
		return string(e.code)
	}
	return string(e.code) + ": " + e.msg
}

// Code returns the error's stable code; errors.As with a wcp.Coded
// finds it through wrapping.
func (e *codeError) Code() wcp.Code { return e.code }
