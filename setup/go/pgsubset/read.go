package main

// Read: what the catalog holds now, in the shape Create recorded, so that a refresh shows
// out-of-band changes as a diff on the resource that declares them, and `pulumi import` (Read
// with an id and nothing else) gets inputs a program can then take over without a replace.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// fact is one property as the catalog has it.
type fact struct {
	value resource.PropertyValue
	// absent is what a property left out of the recorded inputs means (no member roles, no
	// search_path): the catalog's value is only written in where it differs from that. Nil
	// marks a property the server chooses when it is not declared (a database's collation, an
	// extension's version): it is compared where it was recorded and left out otherwise.
	absent *resource.PropertyValue
	// same tells whether a recorded value means the catalog's; nil: sameValue.
	same func(recorded resource.PropertyValue) bool
	// importSkip: not offered as an input on import (a declared value would then force a
	// replace, e.g. a collation the program leaves to the server).
	importSkip bool
}

// facts of one object; nil when the object is gone.
type facts map[string]fact

func absent(v resource.PropertyValue) *resource.PropertyValue { return &v }

var (
	noStrings = absent(resource.NewArrayProperty(nil))
	noNumber  = absent(n(0))
	noString  = absent(s(""))
)

// reader reads an object's facts from the id and the recorded inputs (empty on import).
type reader func(ctx context.Context, c config, id string, rec props) (facts, error)

var readers = map[string]reader{
	"postgresql:index/role:Role":                           readRole,
	"postgresql:index/database:Database":                   readDatabase,
	"postgresql:index/schema:Schema":                       readSchema,
	"postgresql:index/grant:Grant":                         readGrant,
	"postgresql:index/grantRole:GrantRole":                 readGrantRole,
	"postgresql:index/defaultPrivileges:DefaultPrivileges": readDefaultPrivileges,
	"postgresql:index/extension:Extension":                 readExtension,
}

func (s *server) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	k, err := kindOf(req.Urn)
	if err != nil {
		return nil, err
	}
	inputs, err := unmarshal(req.Inputs)
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.Properties)
	if err != nil {
		return nil, err
	}
	importing := len(inputs) == 0 && len(state) == 0
	rec := inputs
	if len(rec) == 0 {
		rec = state // state written before inputs were recorded
	}
	typ := string(resource.URN(req.Urn).Type())
	found, err := readers[typ](ctx, s.config(), req.Id, rec)
	if err != nil {
		return nil, fmt.Errorf("reading %s %q: %w", typ, req.Id, err)
	}
	if found == nil {
		return &pulumirpc.ReadResponse{}, nil // gone: the engine drops it from the state
	}
	var newInputs, newState props
	if importing {
		newInputs = withDefaults(k, found.imported())
		newState = newInputs.Copy()
	} else {
		newInputs = found.merge(inputs)
		newState = found.merge(state)
		if len(inputs) == 0 {
			newInputs = newState.Copy()
		}
	}
	in, err := marshal(newInputs)
	if err != nil {
		return nil, err
	}
	out, err := marshal(secretPassword(newState))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.Id, Properties: out, Inputs: in}, nil
}

// merge writes the catalog's values over the recorded ones they differ from, keeping a
// recorded value (its type, its order, its secretness) wherever it means the same.
func (f facts) merge(rec props) props {
	out := rec.Copy()
	for key, fa := range f {
		k := resource.PropertyKey(key)
		old, ok := rec[k]
		if !ok {
			if fa.absent == nil || sameValue(*fa.absent, fa.value) {
				continue
			}
			out[k] = fa.value
			continue
		}
		if fa.matches(unsecret(old)) {
			continue
		}
		if old.IsSecret() {
			out[k] = resource.MakeSecret(fa.value)
		} else {
			out[k] = fa.value
		}
	}
	return out
}

// imported is the inputs an import starts from: every fact but the unset and skipped ones.
func (f facts) imported() props {
	out := props{}
	for key, fa := range f {
		if fa.importSkip || (fa.absent != nil && sameValue(*fa.absent, fa.value)) {
			continue
		}
		out[resource.PropertyKey(key)] = fa.value
	}
	return out
}

func (fa fact) matches(recorded resource.PropertyValue) bool {
	if fa.same != nil {
		return fa.same(recorded)
	}
	return sameValue(recorded, fa.value)
}

// scalar is a scalar's canonical text: bools and numbers written as the SDK would send them.
func scalar(v resource.PropertyValue) (string, bool) {
	switch v = unsecret(v); {
	case v.IsString():
		if b, err := strconv.ParseBool(v.StringValue()); err == nil {
			return strconv.FormatBool(b), true
		}
		if f, err := strconv.ParseFloat(v.StringValue(), 64); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64), true
		}
		return v.StringValue(), true
	case v.IsNumber():
		return strconv.FormatFloat(v.NumberValue(), 'f', -1, 64), true
	case v.IsBool():
		return strconv.FormatBool(v.BoolValue()), true
	case v.IsNull():
		return "", true
	}
	return "", false
}

func sameValue(a, b resource.PropertyValue) bool {
	a, b = unsecret(a), unsecret(b)
	if a.IsArray() || b.IsArray() {
		return a.IsArray() && b.IsArray() && equalStrings(texts(a), texts(b))
	}
	x, okA := scalar(a)
	y, okB := scalar(b)
	return okA && okB && x == y
}

func texts(v resource.PropertyValue) []string {
	var out []string
	for _, e := range v.ArrayValue() {
		t, _ := scalar(e)
		out = append(out, t)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameSet: the recorded list holds the catalog's members in any order (and case, with fold).
func sameSet(actual []string, fold bool) func(resource.PropertyValue) bool {
	norm := func(xs []string) []string {
		out := make([]string, 0, len(xs))
		seen := map[string]bool{}
		for _, x := range xs {
			if fold {
				x = strings.ToUpper(x)
			}
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
		sort.Strings(out)
		return out
	}
	want := norm(actual)
	return func(recorded resource.PropertyValue) bool {
		if !recorded.IsArray() {
			return len(want) == 0 && (recorded.IsNull() || !recorded.HasValue())
		}
		return equalStrings(norm(texts(recorded)), want)
	}
}

func array(xs []string) resource.PropertyValue {
	vs := make([]resource.PropertyValue, len(xs))
	for i, x := range xs {
		vs[i] = s(x)
	}
	return resource.NewArrayProperty(vs)
}

// ---------------------------------------------------------------------------------------------
// catalog access

// query runs fn on a connection to database ("" = the provider's own).
func (c config) query(ctx context.Context, database string, fn func(*pgx.Conn) error) error {
	conn, err := c.connect(ctx, database)
	if err != nil {
		return fmt.Errorf("connecting to %s@%s:%d/%s: %w", c.user, c.host, c.port, database, err)
	}
	defer conn.Close(ctx)
	return fn(conn)
}

func (c config) databaseExists(ctx context.Context, name string) (bool, error) {
	return c.exists(ctx, "SELECT 1 FROM pg_database WHERE datname = $1", name)
}

// inDatabase runs fn in database when it exists; false when it does not.
func (c config) inDatabase(ctx context.Context, database string, fn func(*pgx.Conn) error) (bool, error) {
	if database == "" {
		database = c.database
	}
	if ok, err := c.databaseExists(ctx, database); err != nil || !ok {
		return false, err
	}
	return true, c.query(ctx, database, fn)
}

// pick is the recorded value of key, or the given fallback (from the id) on import.
func pick(rec props, key, fallback string) string {
	if v := str(rec, key); v != "" {
		return v
	}
	return fallback
}

// splitID splits "<database>.<name>" ids (Schema, Extension) at the first dot.
func splitID(id string) (string, string, error) {
	db, name, ok := strings.Cut(id, ".")
	if !ok || db == "" || name == "" {
		return "", "", fmt.Errorf("id %q is not <database>.<name>", id)
	}
	return db, name, nil
}

// cannotImport is the error for kinds whose ids do not name their object unambiguously.
func cannotImport(what, id string) error {
	return fmt.Errorf("%s %q cannot be imported by the pgfleet stand-in provider: its id joins names with "+
		"'_', which names may contain; declare it instead (its create is idempotent)", what, id)
}

// ---------------------------------------------------------------------------------------------
// Role

func readRole(ctx context.Context, c config, id string, rec props) (facts, error) {
	name := pick(rec, "name", id)
	var (
		super, inherit, createRole, createDB, login, replication, bypassRLS, sameUntil bool
		connLimit                                                                      int
		until                                                                          string
		roles, settings                                                                []string
	)
	err := c.query(ctx, "", func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `
			SELECT r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
			       r.rolreplication, r.rolbypassrls, r.rolconnlimit,
			       coalesce(r.rolvaliduntil::text, 'infinity'),
			       coalesce(r.rolvaliduntil, 'infinity') = coalesce(nullif($2::text, ''), 'infinity')::timestamptz,
			       coalesce((SELECT array_agg(DISTINCT g.rolname::text) FROM pg_auth_members m
			                 JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}'),
			       coalesce((SELECT s.setconfig FROM pg_db_role_setting s
			                 WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}')
			FROM pg_roles r WHERE r.rolname = $1`, name, str(rec, "validUntil")).
			Scan(&super, &inherit, &createRole, &createDB, &login, &replication, &bypassRLS, &connLimit,
				&until, &sameUntil, &roles, &settings)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sort.Strings(roles)
	set := parseSettings(settings)
	f := facts{
		"name":                   {value: s(name)},
		"superuser":              {value: b(super)},
		"inherit":                {value: b(inherit)},
		"createRole":             {value: b(createRole)},
		"createDatabase":         {value: b(createDB)},
		"login":                  {value: b(login)},
		"replication":            {value: b(replication)},
		"bypassRowLevelSecurity": {value: b(bypassRLS)},
		"connectionLimit":        {value: n(connLimit)},
		"validUntil":             {value: s(until), same: func(resource.PropertyValue) bool { return sameUntil }},
		"roles":                  {value: array(roles), absent: noStrings, same: sameSet(roles, false)},
		"searchPaths":            {value: array(searchPath(set["search_path"])), absent: noStrings},
		"assumeRole":             {value: s(set["role"]), absent: noString},
	}
	for key, setting := range map[string]string{
		"statementTimeout":                "statement_timeout",
		"idleInTransactionSessionTimeout": "idle_in_transaction_session_timeout",
	} {
		ms, err := milliseconds(set[setting])
		if err != nil {
			return nil, fmt.Errorf("role %s: %s: %w", name, setting, err)
		}
		f[key] = fact{value: n(ms), absent: noNumber}
	}
	return f, nil
}

// parseSettings reads pg_db_role_setting's "name=value" entries.
func parseSettings(entries []string) map[string]string {
	out := map[string]string{}
	for _, e := range entries {
		if k, v, ok := strings.Cut(e, "="); ok {
			out[k] = v
		}
	}
	return out
}

// searchPath splits a stored search_path ("a, \"B c\"") into its schema names.
func searchPath(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
			p = strings.ReplaceAll(p[1:len(p)-1], `""`, `"`)
		}
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// milliseconds reads a stored time setting ("30000", "30s", "1min"; bare numbers are ms).
func milliseconds(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, "ms"
	if i >= 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot read %q", v)
	}
	scale := map[string]float64{"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
	m, ok := scale[unit]
	if !ok {
		return 0, fmt.Errorf("cannot read %q (unit %q)", v, unit)
	}
	return int(f * m), nil
}

// ---------------------------------------------------------------------------------------------
// Database

func readDatabase(ctx context.Context, c config, id string, rec props) (facts, error) {
	name := pick(rec, "name", id)
	var (
		owner, encoding, collate, ctype, tablespace string
		connLimit                                   int
		allowConn, isTemplate                       bool
	)
	err := c.query(ctx, "", func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `
			SELECT pg_get_userbyid(d.datdba)::text, pg_encoding_to_char(d.encoding)::text,
			       d.datcollate::text, d.datctype::text, t.spcname::text,
			       d.datconnlimit, d.datallowconn, d.datistemplate
			FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace
			WHERE d.datname = $1`, name).
			Scan(&owner, &encoding, &collate, &ctype, &tablespace, &connLimit, &allowConn, &isTemplate)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sameEncoding := func(recorded resource.PropertyValue) bool {
		norm := func(e string) string { return strings.NewReplacer("-", "", "_", "").Replace(strings.ToUpper(e)) }
		r, _ := scalar(recorded)
		return norm(r) == norm(encoding)
	}
	// The template a database was made from is not in the catalog: the recorded one stays, and
	// an import takes the default (template0), as a replace on it would drop the data.
	return facts{
		"name":             {value: s(name)},
		"owner":            {value: s(owner)},
		"encoding":         {value: s(encoding), same: sameEncoding},
		"lcCollate":        {value: s(collate), same: sameLocale(collate), importSkip: true},
		"lcCtype":          {value: s(ctype), same: sameLocale(ctype), importSkip: true},
		"tablespaceName":   {value: s(tablespace), importSkip: true},
		"connectionLimit":  {value: n(connLimit)},
		"allowConnections": {value: b(allowConn)},
		"isTemplate":       {value: b(isTemplate)},
	}, nil
}

// sameLocale: "DEFAULT" (or unset) stands for whatever the server chose.
func sameLocale(actual string) func(resource.PropertyValue) bool {
	return func(recorded resource.PropertyValue) bool {
		r, _ := scalar(recorded)
		return r == "" || strings.EqualFold(r, "DEFAULT") || r == actual
	}
}

// ---------------------------------------------------------------------------------------------
// Schema

func readSchema(ctx context.Context, c config, id string, rec props) (facts, error) {
	db, name := str(rec, "database"), str(rec, "name")
	if name == "" {
		var err error
		if db, name, err = splitID(id); err != nil {
			return nil, err
		}
	}
	var owner string
	found, err := c.inDatabase(ctx, db, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = $1",
			name).Scan(&owner)
	})
	if !found || errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := facts{"name": {value: s(name)}, "owner": {value: s(owner)}}
	if db != "" {
		f["database"] = fact{value: s(db)}
	}
	return f, nil
}

// ---------------------------------------------------------------------------------------------
// Grant: the privileges the declared role holds on the declared object(s), from their ACLs
// (an unset ACL read as the object type's default, where PUBLIC holds CONNECT on databases).

// allPrivileges is what ALL stands for, by object type.
var allPrivileges = map[string][]string{
	"database": {"CREATE", "CONNECT", "TEMPORARY"},
	"schema":   {"USAGE", "CREATE"},
	"table":    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"},
	"sequence": {"USAGE", "SELECT", "UPDATE"},
	"function": {"EXECUTE"}, "procedure": {"EXECUTE"}, "routine": {"EXECUTE"},
	"type": {"USAGE"},
}

// samePrivileges: the recorded list grants what the catalog shows (ALL and TEMP spelled out).
func samePrivileges(objType string, actual []string) func(resource.PropertyValue) bool {
	have := map[string]bool{}
	for _, p := range actual {
		have[strings.ToUpper(p)] = true
	}
	return func(recorded resource.PropertyValue) bool {
		want := map[string]bool{}
		if recorded.IsArray() {
			for _, p := range texts(recorded) {
				switch p = strings.ToUpper(p); p {
				case "ALL", "ALL PRIVILEGES":
					for _, a := range allPrivileges[objType] {
						want[a] = true
					}
				case "TEMP":
					want["TEMPORARY"] = true
				default:
					want[p] = true
				}
			}
		}
		for p := range want {
			if !have[p] {
				return false
			}
		}
		for p := range have {
			// MAINTAIN (PostgreSQL 17) comes with ALL on tables without being spelled out
			if !want[p] && !(p == "MAINTAIN" && want["TRUNCATE"] && want["TRIGGER"]) {
				return false
			}
		}
		return true
	}
}

// acl is the privileges one grantee holds, per object, with whether all are grantable.
type acl struct {
	privileges map[string]map[string]bool // object -> privilege -> grantable
}

func (a acl) add(object, privilege string, grantable bool) {
	if a.privileges[object] == nil {
		a.privileges[object] = map[string]bool{}
	}
	a.privileges[object][privilege] = grantable
}

// common is the privileges held on every one of objects (all objects seen when none listed).
func (a acl) common(objects []string) ([]string, bool) {
	if len(objects) == 0 {
		for o := range a.privileges {
			objects = append(objects, o)
		}
	}
	count, grantable := map[string]int{}, true
	for _, o := range objects {
		for p, g := range a.privileges[o] {
			count[p]++
			grantable = grantable && g
		}
	}
	var out []string
	for p, c := range count {
		if c == len(objects) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, grantable && len(out) > 0
}

// grantee is the role's oid as an ACL names it (0 for PUBLIC); ok is false when no such role.
const granteeOID = `CASE WHEN lower($1::text) = 'public' THEN 0::oid ELSE (SELECT oid FROM pg_roles WHERE rolname = $1::text) END`

func readGrant(ctx context.Context, c config, id string, rec props) (facts, error) {
	if len(rec) == 0 {
		return nil, cannotImport("grant", id)
	}
	db, schema, role := str(rec, "database"), str(rec, "schema"), str(rec, "role")
	objType := strings.ToLower(str(rec, "objectType"))
	objects := append([]string{}, strs(rec, "objects")...) // never NULL as a query argument
	held := acl{privileges: map[string]map[string]bool{}}
	present := true // the object the grant is on still exists
	var known bool  // objects of the type were found (ALL ... IN SCHEMA over none checks nothing)
	collect := func(conn *pgx.Conn, q string, args ...any) error {
		rows, err := conn.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var object string
			var privilege *string
			var grantable *bool
			if err := rows.Scan(&object, &privilege, &grantable); err != nil {
				return err
			}
			known = true
			if held.privileges[object] == nil {
				held.privileges[object] = map[string]bool{}
			}
			if privilege != nil {
				held.add(object, *privilege, grantable != nil && *grantable)
			}
		}
		return rows.Err()
	}
	// Each query yields a row per object (privilege NULL where the role holds none there).
	var err error
	switch objType {
	case "database":
		present, err = c.inDatabase(ctx, "", func(conn *pgx.Conn) error {
			return collect(conn, `
				SELECT d.datname::text, a.privilege_type, a.is_grantable FROM pg_database d
				LEFT JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
				       ON a.grantee = `+granteeOID+`
				WHERE d.datname = $2`, role, db)
		})
		present = present && known
	case "schema":
		present, err = c.inDatabase(ctx, db, func(conn *pgx.Conn) error {
			return collect(conn, `
				SELECT n.nspname::text, a.privilege_type, a.is_grantable FROM pg_namespace n
				LEFT JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
				       ON a.grantee = `+granteeOID+`
				WHERE n.nspname = $2`, role, schema)
		})
		present = present && known
	case "table", "sequence":
		kinds := []string{"r", "v", "m", "f", "p"}
		if objType == "sequence" {
			kinds = []string{"S"}
		}
		present, err = c.inDatabase(ctx, db, func(conn *pgx.Conn) error {
			return collect(conn, `
				SELECT c.relname::text, a.privilege_type, a.is_grantable FROM pg_class c
				JOIN pg_namespace n ON n.oid = c.relnamespace
				LEFT JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(
				    CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
				       ON a.grantee = `+granteeOID+`
				WHERE n.nspname = $2 AND c.relkind::text = ANY($3::text[])
				  AND (cardinality($4::text[]) = 0 OR c.relname::text = ANY($4::text[]))`,
				role, schema, kinds, objects)
		})
	case "function", "procedure", "routine":
		kinds := map[string][]string{"function": {"f", "a", "w"}, "procedure": {"p"}, "routine": {"f", "a", "w", "p"}}[objType]
		present, err = c.inDatabase(ctx, db, func(conn *pgx.Conn) error {
			return collect(conn, `
				SELECT p.proname::text, a.privilege_type, a.is_grantable FROM pg_proc p
				JOIN pg_namespace n ON n.oid = p.pronamespace
				LEFT JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
				       ON a.grantee = `+granteeOID+`
				WHERE n.nspname = $2 AND p.prokind::text = ANY($3::text[])
				  AND (cardinality($4::text[]) = 0 OR p.proname::text = ANY($4::text[]))`,
				role, schema, kinds, objects)
		})
	default:
		return nil, fmt.Errorf("grant: object_type %q is not supported by the pgfleet stand-in provider", objType)
	}
	if err != nil || !present {
		return nil, err
	}
	f := facts{}
	if objType != "database" && objType != "schema" && !known {
		return f, nil // no object to check yet: the recorded privileges stand
	}
	privileges, grantable := held.common(objects)
	f["privileges"] = fact{value: array(privileges), same: samePrivileges(objType, privileges)}
	if len(privileges) > 0 {
		f["withGrantOption"] = fact{value: b(grantable)}
	}
	return f, nil
}

// ---------------------------------------------------------------------------------------------
// GrantRole

func readGrantRole(ctx context.Context, c config, id string, rec props) (facts, error) {
	if len(rec) == 0 {
		return nil, cannotImport("grant_role", id)
	}
	role, granted := str(rec, "role"), str(rec, "grantRole")
	var admin *bool
	err := c.query(ctx, "", func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `
			SELECT bool_or(m.admin_option) FROM pg_auth_members m
			JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
			WHERE r.rolname = $1 AND g.rolname = $2`, role, granted).Scan(&admin)
	})
	if err != nil || admin == nil {
		return nil, err
	}
	return facts{"withAdminOption": {value: b(*admin)}}, nil
}

// ---------------------------------------------------------------------------------------------
// DefaultPrivileges: pg_default_acl's entry for (owner, schema, object type), this grantee's part

var defaultACLType = map[string]string{
	"table": "r", "sequence": "S", "function": "f", "routine": "f", "type": "T", "schema": "n",
}

func readDefaultPrivileges(ctx context.Context, c config, id string, rec props) (facts, error) {
	if len(rec) == 0 {
		return nil, cannotImport("default_privileges", id)
	}
	db, schema, owner, role := str(rec, "database"), str(rec, "schema"), str(rec, "owner"), str(rec, "role")
	objType := strings.ToLower(str(rec, "objectType"))
	code, ok := defaultACLType[objType]
	if !ok {
		return nil, fmt.Errorf("default privileges: unsupported object_type %q", objType)
	}
	var privileges []string
	var grantable, ownerFound, schemaFound bool
	found, err := c.inDatabase(ctx, db, func(conn *pgx.Conn) error {
		err := conn.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
			       $2::text = '' OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2::text)`, owner, schema).
			Scan(&ownerFound, &schemaFound)
		if err != nil || !ownerFound || !schemaFound {
			return err
		}
		// Without an entry, a schema's default is nothing and the global one is the type's default.
		rows, err := conn.Query(ctx, `
			WITH target AS (
			  SELECT (SELECT oid FROM pg_roles WHERE rolname = $2::text) AS owner,
			         coalesce((SELECT oid FROM pg_namespace WHERE nspname = $3::text), 0) AS space)
			SELECT a.privilege_type, a.is_grantable
			FROM target t
			LEFT JOIN pg_default_acl d
			       ON d.defaclrole = t.owner AND d.defaclnamespace = t.space AND d.defaclobjtype::text = $4::text
			CROSS JOIN LATERAL aclexplode(CASE
			    WHEN d.defaclacl IS NOT NULL THEN d.defaclacl
			    WHEN t.space = 0 THEN acldefault(($4::text)::"char", t.owner)
			    ELSE '{}'::aclitem[] END) a
			WHERE a.grantee = `+granteeOID, role, owner, schema, code)
		if err != nil {
			return err
		}
		defer rows.Close()
		grantable = true
		for rows.Next() {
			var p string
			var g bool
			if err := rows.Scan(&p, &g); err != nil {
				return err
			}
			privileges = append(privileges, p)
			grantable = grantable && g
		}
		return rows.Err()
	})
	if err != nil || !found || !ownerFound || !schemaFound {
		return nil, err
	}
	sort.Strings(privileges)
	f := facts{"privileges": {value: array(privileges), same: samePrivileges(objType, privileges)}}
	if len(privileges) > 0 {
		f["withGrantOption"] = fact{value: b(grantable)}
	}
	return f, nil
}

// ---------------------------------------------------------------------------------------------
// Extension

func readExtension(ctx context.Context, c config, id string, rec props) (facts, error) {
	db, name := str(rec, "database"), str(rec, "name")
	if name == "" {
		var err error
		if db, name, err = splitID(id); err != nil {
			return nil, err
		}
	}
	var version, schema string
	found, err := c.inDatabase(ctx, db, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `
			SELECT e.extversion, n.nspname::text FROM pg_extension e
			JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1`, name).Scan(&version, &schema)
	})
	if !found || errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := facts{"name": {value: s(name)}, "version": {value: s(version)}, "schema": {value: s(schema)}}
	if db != "" {
		f["database"] = fact{value: s(db)}
	}
	return f, nil
}
