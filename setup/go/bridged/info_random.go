package main

import (
	"context"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"

	"github.com/terraform-providers/terraform-provider-random/pgfleetshim"
)

const (
	pkgName   = "random"
	tfPrefix  = "random_"
	gitHubOrg = "hashicorp"
	kind      = kindPF
)

var tokenOverrides = map[string]string{}

var functionOverrides = map[string]string{}

var excludedTokens = []string{}

func newShimProvider(ctx context.Context) shim.Provider {
	return pftfbridge.ShimProviderWithContext(ctx, pgfleetshim.NewProvider())
}

func configure(*tfbridge.ProviderInfo) {}
