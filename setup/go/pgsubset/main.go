// pgfleet-pgsubset: a stand-in `pulumi-resource-postgresql` for machines where the real
// (Terraform-bridged) provider cannot be built, because neither github.com/pulumi/pulumi-postgresql
// nor the upstream Terraform provider is obtainable from the Go module proxy.
//
// It serves the pulumi_postgresql SDK's wire protocol (same tokens and property names) for the
// resources pgfleet uses, with the Terraform provider's semantics as far as pgfleet relies on them:
//
//	postgresql:index/role:Role                 CREATE/ALTER/DROP ROLE (+ member roles, search_path,
//	                                           statement_timeout, idle_in_transaction_session_timeout)
//	postgresql:index/database:Database         CREATE/ALTER/DROP DATABASE
//	postgresql:index/schema:Schema             CREATE/ALTER/DROP SCHEMA
//	postgresql:index/grant:Grant               REVOKE ALL + GRANT on database|schema|table|sequence|function
//	postgresql:index/grantRole:GrantRole       GRANT role TO role
//	postgresql:index/defaultPrivileges:DefaultPrivileges
//	postgresql:index/extension:Extension       CREATE/DROP EXTENSION
//
// Read (read.go) reports what the catalog holds, so refresh shows out-of-band changes and
// `pulumi import` adopts roles, databases, schemas and extensions (ids: role and database name,
// "<database>.<schema>", "<database>.<extension>"). Not implemented: import of grants (their ids
// are ambiguous), functions (get*), and the other pulumi_postgresql resources (they fail with a
// clear error).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

var version = "0.0.0"

const pkg = "postgresql"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println(version)
		return
	}
	err := provider.Main(pkg, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &server{}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------------------------
// property helpers

type props = resource.PropertyMap

func unmarshal(s *structpb.Struct) (props, error) {
	return plugin.UnmarshalProperties(s, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true})
}

func marshal(p props) (*structpb.Struct, error) {
	return plugin.MarshalProperties(p, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true})
}

// unsecret is a value with its secret wrapper, if any, taken off.
func unsecret(v resource.PropertyValue) resource.PropertyValue {
	if v.IsSecret() {
		return v.SecretValue().Element
	}
	return v
}

// lookup is the plain value under k, and whether k is set.
func lookup(p props, k string) (resource.PropertyValue, bool) {
	v, ok := p[resource.PropertyKey(k)]
	return unsecret(v), ok
}

func str(p props, k string) string {
	v, ok := lookup(p, k)
	if !ok {
		return ""
	}
	switch {
	case v.IsString():
		return v.StringValue()
	case v.IsNumber():
		return strconv.FormatFloat(v.NumberValue(), 'f', -1, 64)
	case v.IsBool():
		return strconv.FormatBool(v.BoolValue())
	}
	return ""
}

func boolean(p props, k string, def bool) bool {
	v, ok := lookup(p, k)
	if !ok {
		return def
	}
	switch {
	case v.IsBool():
		return v.BoolValue()
	case v.IsString():
		b, err := strconv.ParseBool(v.StringValue())
		if err == nil {
			return b
		}
	}
	return def
}

func integer(p props, k string, def int) int {
	v, ok := lookup(p, k)
	if !ok {
		return def
	}
	switch {
	case v.IsNumber():
		return int(v.NumberValue())
	case v.IsString():
		if n, err := strconv.Atoi(v.StringValue()); err == nil {
			return n
		}
	}
	return def
}

func strs(p props, k string) []string {
	v, ok := lookup(p, k)
	if !ok || !v.IsArray() {
		return nil
	}
	var out []string
	for _, e := range v.ArrayValue() {
		if e = unsecret(e); e.IsString() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

func hasUnknowns(p props) bool { return p.ContainsUnknowns() }

// ---------------------------------------------------------------------------------------------
// SQL helpers

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// roleRef quotes a role name; "public" means the PUBLIC pseudo-role, as in the TF provider.
func roleRef(s string) string {
	if strings.EqualFold(s, "public") {
		return "PUBLIC"
	}
	return ident(s)
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

type config struct {
	host, user, password, database, sslmode string
	port, timeout                           int
	superuser                               bool
}

func (c config) connect(ctx context.Context, database string) (*pgx.Conn, error) {
	if database == "" {
		database = c.database
	}
	kv := map[string]string{
		"host": c.host, "port": strconv.Itoa(c.port), "user": c.user, "password": c.password,
		"dbname": database, "sslmode": c.sslmode, "connect_timeout": strconv.Itoa(c.timeout),
	}
	var parts []string
	for _, k := range []string{"host", "port", "user", "password", "dbname", "sslmode", "connect_timeout"} {
		v := strings.ReplaceAll(strings.ReplaceAll(kv[k], `\`, `\\`), `'`, `\'`)
		parts = append(parts, fmt.Sprintf("%s='%s'", k, v))
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(c.timeout+5)*time.Second)
	defer cancel()
	return pgx.Connect(cctx, strings.Join(parts, " "))
}

// exec runs statements in one transaction on the given database.
func (c config) exec(ctx context.Context, database string, stmts ...string) error {
	conn, err := c.connect(ctx, database)
	if err != nil {
		return fmt.Errorf("connecting to %s@%s:%d/%s: %w", c.user, c.host, c.port, database, err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			_ = tx.Rollback(ctx)
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return tx.Commit(ctx)
}

// execEach runs statements outside a transaction (CREATE/DROP DATABASE need that).
func (c config) execEach(ctx context.Context, database string, stmts ...string) error {
	conn, err := c.connect(ctx, database)
	if err != nil {
		return fmt.Errorf("connecting to %s@%s:%d/%s: %w", c.user, c.host, c.port, database, err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// exists runs a query that returns a row when the object it asks about exists.
func (c config) exists(ctx context.Context, query string, args ...any) (bool, error) {
	conn, err := c.connect(ctx, "")
	if err != nil {
		return false, fmt.Errorf("connecting to %s@%s:%d: %w", c.user, c.host, c.port, err)
	}
	defer conn.Close(ctx)
	var one int
	err = conn.QueryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ---------------------------------------------------------------------------------------------
// the gRPC server

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	mu  sync.Mutex
	cfg config
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	b, _ := json.Marshal(map[string]any{"name": pkg, "version": version,
		"description": "pgfleet stand-in for the postgresql provider (subset)"})
	return &pulumirpc.GetSchemaResponse{Schema: string(b)}, nil
}

func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.News}, nil
}

func (s *server) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.News)
	if err != nil {
		return nil, err
	}
	d := olds.Diff(news)
	if d == nil || !d.AnyChanges() {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME}, nil
}

func envOr(v, env, def string) string {
	if v != "" {
		return v
	}
	if e := os.Getenv(env); e != "" {
		return e
	}
	return def
}

func (s *server) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	var p props
	if req.Args != nil {
		var err error
		if p, err = unmarshal(req.Args); err != nil {
			return nil, err
		}
	} else {
		p = props{}
		for k, v := range req.Variables {
			key := k[strings.LastIndex(k, ":")+1:]
			p[resource.PropertyKey(key)] = resource.NewStringProperty(v)
		}
	}
	c := config{
		host:      envOr(str(p, "host"), "PGHOST", "localhost"),
		user:      envOr(str(p, "username"), "PGUSER", "postgres"),
		password:  envOr(str(p, "password"), "PGPASSWORD", ""),
		database:  envOr(str(p, "database"), "PGDATABASE", "postgres"),
		sslmode:   envOr(str(p, "sslmode"), "PGSSLMODE", envOr(str(p, "sslMode"), "", "prefer")),
		superuser: boolean(p, "superuser", true),
	}
	c.port, _ = strconv.Atoi(envOr(str(p, "port"), "PGPORT", "5432"))
	c.timeout, _ = strconv.Atoi(envOr(str(p, "connectTimeout"), "PGCONNECT_TIMEOUT", "180"))
	s.mu.Lock()
	s.cfg = c
	s.mu.Unlock()
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: false}, nil
}

func (s *server) config() config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// kinds ------------------------------------------------------------------------------------------

type kind struct {
	// properties whose change forces a replacement
	replaceOn []string
	// every change forces a replacement (revoke-then-grant resources)
	replaceAll bool
	// delete the old before creating the new on replacement
	deleteFirst bool
	defaults    map[string]resource.PropertyValue
	create      func(ctx context.Context, c config, in props) (string, error)
	update      func(ctx context.Context, c config, id string, olds, news props) (string, error)
	remove      func(ctx context.Context, c config, id string, olds props) error
}

func kindOf(urn string) (*kind, error) {
	t := resource.URN(urn).Type()
	if k, ok := kinds[string(t)]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%s is not implemented by the pgfleet postgresql stand-in provider "+
		"(setup/go/pgsubset); supported: %s", t, strings.Join(supported(), ", "))
}

func supported() []string {
	var out []string
	for t := range kinds {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func withDefaults(k *kind, in props) props {
	out := in.Copy()
	for key, v := range k.defaults {
		if _, ok := out[resource.PropertyKey(key)]; !ok {
			out[resource.PropertyKey(key)] = v
		}
	}
	return out
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	_, news, err := newInputs(req.Urn, req.News)
	if err != nil {
		return nil, err
	}
	out, err := marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: out}, nil
}

// previousInputs decodes a resource's recorded inputs, or its recorded outputs where state
// written before inputs were recorded has none.
func previousInputs(inputs, outputs *structpb.Struct) (props, error) {
	old, err := unmarshal(inputs)
	if err != nil || len(old) > 0 {
		return old, err
	}
	return unmarshal(outputs)
}

// newInputs reads what Check and Create both start from: the kind and its inputs with defaults.
func newInputs(urn string, inputs *structpb.Struct) (*kind, props, error) {
	k, err := kindOf(urn)
	if err != nil {
		return nil, nil, err
	}
	in, err := unmarshal(inputs)
	if err != nil {
		return nil, nil, err
	}
	return k, withDefaults(k, in), nil
}

// decodeChange reads what Diff and Update both start from: the resource kind, the old inputs
// (or, for state written before inputs were recorded, the old outputs) and the new inputs.
func decodeChange(urn string, oldInputs, olds, news *structpb.Struct) (*kind, props, props, error) {
	k, err := kindOf(urn)
	if err != nil {
		return nil, nil, nil, err
	}
	old, err := previousInputs(oldInputs, olds)
	if err != nil {
		return nil, nil, nil, err
	}
	updated, err := unmarshal(news)
	if err != nil {
		return nil, nil, nil, err
	}
	return k, old, updated, nil
}

func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	k, olds, news, err := decodeChange(req.Urn, req.GetOldInputs(), req.Olds, req.News)
	if err != nil {
		return nil, err
	}
	d := olds.Diff(news)
	if d == nil || !d.AnyChanges() {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	var changed, replaces []string
	for _, key := range d.ChangedKeys() {
		changed = append(changed, string(key))
		if k.replaceAll {
			replaces = append(replaces, string(key))
			continue
		}
		for _, r := range k.replaceOn {
			if string(key) == r {
				replaces = append(replaces, r)
			}
		}
	}
	return &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_SOME,
		Diffs:               changed,
		Replaces:            replaces,
		DeleteBeforeReplace: len(replaces) > 0 && k.deleteFirst,
	}, nil
}

func secretPassword(p props) props {
	if v, ok := p["password"]; ok && !v.IsSecret() && !v.IsNull() {
		p["password"] = resource.MakeSecret(v)
	}
	return p
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	k, in, err := newInputs(req.Urn, req.Properties)
	if err != nil {
		return nil, err
	}
	if req.Preview || hasUnknowns(in) {
		out, err := marshal(secretPassword(in))
		return &pulumirpc.CreateResponse{Properties: out}, err
	}
	id, err := k.create(ctx, s.config(), in)
	if err != nil {
		return nil, err
	}
	out, err := marshal(secretPassword(in))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: out}, nil
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	k, olds, news, err := decodeChange(req.Urn, req.GetOldInputs(), req.Olds, req.News)
	if err != nil {
		return nil, err
	}
	news = withDefaults(k, news)
	if req.Preview {
		out, err := marshal(secretPassword(news))
		return &pulumirpc.UpdateResponse{Properties: out}, err
	}
	if k.update == nil {
		return nil, errors.New("update not supported (all changes replace)")
	}
	if _, err := k.update(ctx, s.config(), req.Id, olds, news); err != nil {
		return nil, err
	}
	out, err := marshal(secretPassword(news))
	return &pulumirpc.UpdateResponse{Properties: out}, err
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	k, err := kindOf(req.Urn)
	if err != nil {
		return nil, err
	}
	olds, err := previousInputs(req.GetOldInputs(), req.Properties)
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, k.remove(ctx, s.config(), req.Id, olds)
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (s *server) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, fmt.Errorf("function %s is not implemented by the pgfleet postgresql stand-in provider", req.Tok)
}
