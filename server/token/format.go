package token

import "github.com/iks-dev/iks/internal/jointoken"

// The join-token format lives in internal/jointoken, shared with the
// agent's bootstrap; these names keep this package's API whole.
type Token = jointoken.Token

// Format constants.
const (
	Prefix        = jointoken.Prefix
	NodeGroup     = jointoken.NodeGroup
	FullTokenHint = jointoken.FullTokenHint
	separator     = jointoken.Separator
)

// Format functions.
var (
	Parse          = jointoken.Parse
	Generate       = jointoken.Generate
	CAHashPEM      = jointoken.CAHashPEM
	ValidateCAHash = jointoken.ValidateCAHash
)

func idOK(id string) bool         { return jointoken.IsBootstrapID(id) }
func secretOK(secret string) bool { return jointoken.IsBootstrapSecret(secret) }
