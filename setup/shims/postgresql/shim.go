// Package pgfleetshim exposes terraform-provider-postgresql's SDKv2 provider under a path the
// build controls (module github.com/terraform-providers/terraform-provider-postgresql/pgfleetshim,
// replaced to this directory at build time).
package pgfleetshim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"

	"github.com/terraform-providers/terraform-provider-postgresql/postgresql"
)

// NewProvider returns the upstream SDKv2 provider.
func NewProvider() *schema.Provider { return postgresql.Provider() }
