// Package pgfleetshim exposes terraform-provider-vault's internal Plugin Framework provider,
// which the bridge muxes with the SDKv2 provider. Compiled under module path
// github.com/hashicorp/terraform-provider-vault/pgfleetshim (replaced to this directory at
// build time) so it may import internal/provider/fwprovider.
package pgfleetshim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"

	"github.com/hashicorp/terraform-provider-vault/internal/provider/fwprovider"
)

// NewFrameworkProvider wraps the upstream framework provider around the configured SDKv2
// primary, whose Meta() carries the Vault client shared by both halves.
func NewFrameworkProvider(primary interface{ Meta() interface{} }) provider.Provider {
	return fwprovider.New(primary)
}
