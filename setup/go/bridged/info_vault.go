package main

import (
	"context"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"

	"github.com/hashicorp/terraform-provider-vault/pgfleetshim"
	vaultschema "github.com/hashicorp/terraform-provider-vault/schema"
	"github.com/hashicorp/terraform-provider-vault/vault"
)

const (
	pkgName   = "vault"
	tfPrefix  = "vault_"
	gitHubOrg = "hashicorp"
	kind      = kindMux
)

var tokenOverrides = map[string]string{}

var functionOverrides = map[string]string{}

var excludedTokens = []string{}

func newShimProvider(ctx context.Context) shim.Provider {
	primary := vaultschema.NewProvider(vault.Provider())
	return pftfbridge.MuxShimWithPF(ctx,
		shimv2.NewProvider(primary.SchemaProvider()),
		pgfleetshim.NewFrameworkProvider(primary))
}

func configure(info *tfbridge.ProviderInfo) {
	info.Config = map[string]*tfbridge.SchemaInfo{
		"skip_tls_verify": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"VAULT_SKIP_VERIFY"}}},
	}
}
