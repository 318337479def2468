// Package policies embeds the policy files shipped with xmppcheck and their
// source documents, so the binary works without a checkout.
package policies

import (
	"embed"

	"github.com/xmppcheck/xmppcheck/spec"
)

// FS holds every shipped policy file and, under source/, the documents they
// quote.
//
//go:embed *.yaml source/*.txt
var FS embed.FS

// Default is the name, within FS, of the policy used when none is given.
const Default = "jabberx.yaml"

// LoadDefault loads and validates the default policy from FS.
func LoadDefault() (*spec.Policy, error) {
	p, err := spec.LoadFS(FS, Default)
	if p != nil {
		p.File = "embedded:" + Default
	}
	return p, err
}
