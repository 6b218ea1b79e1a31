package main

import (
	"context"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"

	"github.com/terraform-providers/terraform-provider-docker/pgfleetshim"
)

const (
	pkgName   = "docker"
	tfPrefix  = "docker_"
	gitHubOrg = "kreuzwerker"
	kind      = kindMux
)

// pulumi-docker names Terraform's docker_image "RemoteImage" (its own "Image" resource is a
// native, non-Terraform implementation that this build does not provide).
var tokenOverrides = map[string]string{
	"docker_image":  "docker:index/remoteImage:RemoteImage",
	"docker_config": "docker:index/serviceConfig:ServiceConfig",
}

var functionOverrides = map[string]string{
	"docker_image": "docker:index/getRemoteImage:getRemoteImage",
}

var excludedTokens = []string{
	"docker:index/image:Image",
}

func newShimProvider(ctx context.Context) shim.Provider {
	return pftfbridge.MuxShimWithPF(ctx,
		shimv2.NewProvider(pgfleetshim.NewProvider(version)),
		pgfleetshim.NewFrameworkProvider(version))
}

func configure(*tfbridge.ProviderInfo) {}
