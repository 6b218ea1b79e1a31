package main

import (
	"context"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"

	"github.com/terraform-providers/terraform-provider-postgresql/pgfleetshim"
)

const (
	pkgName   = "postgresql"
	tfPrefix  = "postgresql_"
	gitHubOrg = "cyrilgdn"
	kind      = kindSDKv2
)

var tokenOverrides = map[string]string{}

var functionOverrides = map[string]string{}

// DefaultPrivileg is the SDK's deprecated alias of DefaultPrivileges.
var excludedTokens = []string{"postgresql:index/defaultPrivileg:DefaultPrivileg"}

func newShimProvider(context.Context) shim.Provider {
	return shimv2.NewProvider(pgfleetshim.NewProvider())
}

func configure(*tfbridge.ProviderInfo) {}
