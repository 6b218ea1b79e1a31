// Shared main for pgfleet's locally built Terraform-bridged Pulumi providers.
//
// The upstream pulumi-<name>/provider modules are not obtainable from the Go module proxy
// reachable here, so each provider is rebuilt from the published bridge library and the
// upstream Terraform provider module. Resource and function tokens are not guessed: they are
// taken from the installed Python SDK (setup/providers/<name>.tokens.json, written by
// setup/gen-sdk-tokens.py) and matched against the Terraform resource names at start-up.
//
// One binary serves both roles:
//
//	pulumi-resource-<name>                      the provider plugin
//	pulumi-resource-<name> pgfleet-tfgen ARGS   the bridge's tfgen (schema --out DIR --skip-docs)
//	pulumi-resource-<name> pgfleet-mapping      print the TF name -> token mapping as JSON
//
// schema.json and bridge-metadata.json are read at start-up from the binary's directory
// (written there by the pgfleet-tfgen step of setup/toolchain.sh).
//
// Each provider adds one file (info_<name>.go) defining: pkgName, tfPrefix, gitHubOrg, kind,
// newShimProvider, tokenOverrides (resources), functionOverrides (data sources),
// excludedTokens and configure.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// version is the plugin version reported to the engine (set with -ldflags -X main.version=).
var version = "0.0.0"

//go:embed sdk-tokens.json
var sdkTokensJSON []byte

type providerKind int

const (
	kindSDKv2 providerKind = iota // terraform-plugin-sdk/v2 only
	kindPF                        // terraform-plugin-framework only
	kindMux                       // SDKv2 muxed with a framework provider
)

type sdkTokens struct {
	Package    string              `json:"package"`
	SDKVersion string              `json:"sdkVersion"`
	Resources  []string            `json:"resources"`
	Functions  []string            `json:"functions"`
	Properties map[string][]string `json:"properties"` // resource token -> wire property names
}

func exeDir() string {
	self, err := os.Executable()
	if err != nil {
		return "."
	}
	if r, err := filepath.EvalSymlinks(self); err == nil {
		self = r
	}
	return filepath.Dir(self)
}

func readOr(path string, fallback []byte) []byte {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return fallback
	}
	return b
}

// norm lower-cases and drops underscores, so "kv_secret_v2" and "kvSecretV2" compare equal.
func norm(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", ""))
}

type tokenParts struct{ tok, mod, name string }

func split(tok string) (tokenParts, bool) {
	parts := strings.Split(tok, ":")
	if len(parts) != 3 {
		return tokenParts{}, false
	}
	mod := parts[1]
	if i := strings.Index(mod, "/"); i >= 0 {
		mod = mod[:i]
	}
	return tokenParts{tok: tok, mod: mod, name: parts[2]}, true
}

// score rates how well token t fits the Terraform name tf (0 = no fit).
func score(tf string, t tokenParts, isFunc bool) int {
	rest := norm(strings.TrimPrefix(tf, tfPrefix))
	full := norm(tf)
	name := norm(t.name)
	if isFunc {
		name = strings.TrimPrefix(name, "get")
	}
	mod := norm(t.mod)
	if t.mod == "index" {
		mod = ""
	}
	switch {
	case mod == "" && (rest == name || full == name):
		return 4
	case mod != "" && (rest == mod+name || rest == name):
		if rest == mod+name {
			return 4
		}
		return 1
	}
	if !strings.HasSuffix(rest, name) {
		return 0
	}
	p := strings.TrimSuffix(rest, name)
	switch {
	case mod != "" && p == mod:
		return 4
	case mod != "" && p != "" && (strings.HasPrefix(mod, p) || strings.HasPrefix(p, mod)):
		return 2
	}
	return 0
}

type match struct {
	tf, tok string
	s       int
}

// mapNames assigns each Terraform name at most one token and each token at most one name,
// best scores first; overrides win outright ("" means: do not expose).
func mapNames(tfNames []string, toks []string, isFunc bool,
	overrides map[string]string,
) (map[string]string, []string, []string) {
	out := map[string]string{}
	usedTok := map[string]bool{}
	var remaining []string
	for _, tf := range tfNames {
		if tok, ok := overrides[tf]; ok {
			if tok != "" {
				out[tf] = tok
				usedTok[tok] = true
			}
			continue
		}
		remaining = append(remaining, tf)
	}
	for _, tok := range excludedTokens {
		usedTok[tok] = true
	}
	var cands []match
	for _, tf := range remaining {
		for _, tok := range toks {
			if usedTok[tok] {
				continue
			}
			t, ok := split(tok)
			if !ok {
				continue
			}
			if s := score(tf, t, isFunc); s > 0 {
				cands = append(cands, match{tf, tok, s})
			}
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].s != cands[j].s {
			return cands[i].s > cands[j].s
		}
		if cands[i].tf != cands[j].tf {
			return cands[i].tf < cands[j].tf
		}
		return cands[i].tok < cands[j].tok
	})
	for _, c := range cands {
		if _, done := out[c.tf]; done || usedTok[c.tok] {
			continue
		}
		out[c.tf] = c.tok
		usedTok[c.tok] = true
	}
	var unmappedTF, unusedTok []string
	for _, tf := range tfNames {
		if _, ok := out[tf]; !ok {
			unmappedTF = append(unmappedTF, tf)
		}
	}
	for _, tok := range toks {
		if !usedTok[tok] {
			unusedTok = append(unusedTok, tok)
		}
	}
	sort.Strings(unmappedTF)
	return out, unmappedTF, unusedTok
}

func names(m shim.ResourceMap) []string {
	var out []string
	m.Range(func(k string, _ shim.Resource) bool {
		out = append(out, k)
		return true
	})
	sort.Strings(out)
	return out
}

type mappingReport struct {
	Resources         map[string]string `json:"resources"`
	DataSources       map[string]string `json:"dataSources"`
	UnmappedTF        []string          `json:"unmappedTerraform"`
	UnservedSDKTokens []string          `json:"unservedSdkTokens"`
	RenamedFields     map[string]string `json:"renamedFields"`
}

// lowerCamel turns a Terraform attribute name into its un-pluralized Pulumi form.
func lowerCamel(tf string) string {
	parts := strings.Split(tf, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// alignFieldNames keeps top-level property names the SDK uses where the bridge's default
// naming differs only by its automatic pluralisation of list/set attributes (the official
// providers pin such names, e.g. docker_container.command stays "command", not "commands").
func alignFieldNames(sch shim.SchemaMap, sdkProps []string, tf string,
	renamed map[string]string,
) map[string]*tfbridge.SchemaInfo {
	if sch == nil || len(sdkProps) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, n := range sdkProps {
		want[n] = true
	}
	fields := map[string]*tfbridge.SchemaInfo{}
	sch.Range(func(field string, _ shim.Schema) bool {
		def := tfbridge.TerraformToPulumiNameV2(field, sch, nil)
		if want[def] {
			return true
		}
		if camel := lowerCamel(field); camel != def && want[camel] {
			fields[field] = &tfbridge.SchemaInfo{Name: camel}
			renamed[tf+"."+field] = camel
		}
		return true
	})
	if len(fields) == 0 {
		return nil
	}
	return fields
}

func buildInfo(ctx context.Context, metadata []byte) (tfbridge.ProviderInfo, mappingReport) {
	var sdk sdkTokens
	if err := json.Unmarshal(sdkTokensJSON, &sdk); err != nil {
		panic(fmt.Errorf("sdk-tokens.json: %w", err))
	}
	p := newShimProvider(ctx)
	info := tfbridge.ProviderInfo{
		P:            p,
		Name:         pkgName,
		Version:      version,
		Description:  "pgfleet local build of the " + pkgName + " provider (serves pulumi-" + pkgName + " " + sdk.SDKVersion + ")",
		License:      "Apache-2.0",
		GitHubOrg:    gitHubOrg,
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources:    map[string]*tfbridge.ResourceInfo{},
		DataSources:  map[string]*tfbridge.DataSourceInfo{},
	}
	res, unRes, unusedRes := mapNames(names(p.ResourcesMap()), sdk.Resources, false, tokenOverrides)
	ds, unDS, unusedFn := mapNames(names(p.DataSourcesMap()), sdk.Functions, true, functionOverrides)
	renamed := map[string]string{}
	for tf, tok := range res {
		ri := &tfbridge.ResourceInfo{Tok: tokens.Type(tok)}
		if r, ok := p.ResourcesMap().GetOk(tf); ok {
			ri.Fields = alignFieldNames(r.Schema(), sdk.Properties[tok], tf, renamed)
		}
		info.Resources[tf] = ri
	}
	for tf, tok := range ds {
		info.DataSources[tf] = &tfbridge.DataSourceInfo{Tok: tokens.ModuleMember(tok)}
	}
	info.IgnoreMappings = append(append([]string{}, unRes...), unDS...)
	configure(&info)
	rep := mappingReport{
		Resources: res, DataSources: ds, RenamedFields: renamed,
		UnmappedTF:        info.IgnoreMappings,
		UnservedSDKTokens: append(unusedRes, unusedFn...),
	}
	return info, rep
}

func main() {
	ctx := context.Background()
	dir := exeDir()
	metadata := readOr(filepath.Join(dir, "bridge-metadata.json"), []byte("{}"))
	schema := readOr(filepath.Join(dir, "schema.json"),
		[]byte(fmt.Sprintf(`{"name":%q,"version":%q}`, pkgName, version)))

	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "pgfleet-mapping":
		_, rep := buildInfo(ctx, []byte("{}"))
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", " ")
		if err := enc.Encode(rep); err != nil {
			panic(err)
		}
		return
	case "pgfleet-tfgen":
		os.Args = append([]string{"pulumi-tfgen-" + pkgName}, os.Args[2:]...)
		// Regenerate from scratch: earlier metadata is not an input we rely on.
		info, _ := buildInfo(ctx, []byte("{}"))
		switch kind {
		case kindSDKv2:
			tfgen.Main(pkgName, version, info)
		case kindPF:
			pftfgen.Main(pkgName, info)
		case kindMux:
			pftfgen.MainWithMuxer(pkgName, info)
		}
		return
	}

	info, _ := buildInfo(ctx, metadata)
	switch kind {
	case kindSDKv2:
		tfbridge.Main(pkgName, version, info, schema)
	case kindPF:
		pftfbridge.Main(ctx, pkgName, info, pftfbridge.ProviderMetadata{PackageSchema: schema})
	case kindMux:
		pftfbridge.MainWithMuxer(ctx, pkgName, info, schema)
	}
}
