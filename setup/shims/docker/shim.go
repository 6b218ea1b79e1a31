// Package pgfleetshim exposes terraform-provider-docker's internal providers (SDKv2 and Plugin
// Framework halves). Compiled under module path
// github.com/terraform-providers/terraform-provider-docker/pgfleetshim (replaced to this
// directory at build time) so it may import internal/provider. Build with tag no_compose:
// the docker_compose resource pulls in the whole compose stack and is not used by pgfleet.
package pgfleetshim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"

	upstream "github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider returns the upstream SDKv2 provider.
func NewProvider(version string) *schema.Provider { return upstream.New(version)() }

// NewFrameworkProvider returns the upstream framework provider.
func NewFrameworkProvider(version string) provider.Provider {
	return upstream.NewFrameworkProvider(version)()
}
