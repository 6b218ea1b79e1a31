// Package pgfleetshim exposes terraform-provider-random's internal Plugin Framework provider.
// It is compiled under the upstream module's import path (module
// github.com/terraform-providers/terraform-provider-random/pgfleetshim, replaced to this
// directory at build time) so Go's internal-package rule lets it import internal/provider.
package pgfleetshim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"

	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns the upstream framework provider.
func NewProvider() provider.Provider { return upstream.New() }
