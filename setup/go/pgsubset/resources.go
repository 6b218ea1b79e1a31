package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

var kinds = map[string]*kind{
	"postgresql:index/role:Role":                           roleKind,
	"postgresql:index/database:Database":                   databaseKind,
	"postgresql:index/schema:Schema":                       schemaKind,
	"postgresql:index/grant:Grant":                         grantKind,
	"postgresql:index/grantRole:GrantRole":                 grantRoleKind,
	"postgresql:index/defaultPrivileges:DefaultPrivileges": defaultPrivilegesKind,
	"postgresql:index/extension:Extension":                 extensionKind,
}

func b(v bool) resource.PropertyValue   { return resource.NewBoolProperty(v) }
func n(v int) resource.PropertyValue    { return resource.NewNumberProperty(float64(v)) }
func s(v string) resource.PropertyValue { return resource.NewStringProperty(v) }

func flag(on bool, yes, no string) string {
	if on {
		return yes
	}
	return no
}

// ---------------------------------------------------------------------------------------------
// Role

var roleKind = &kind{
	defaults: map[string]resource.PropertyValue{
		"login": b(false), "superuser": b(false), "createDatabase": b(false), "createRole": b(false),
		"inherit": b(true), "replication": b(false), "bypassRowLevelSecurity": b(false),
		"connectionLimit": n(-1), "encryptedPassword": b(true), "validUntil": s("infinity"),
		"skipDropRole": b(false), "skipReassignOwned": b(false),
		"statementTimeout": n(0), "idleInTransactionSessionTimeout": n(0),
	},
	create: func(ctx context.Context, c config, in props) (string, error) {
		name := str(in, "name")
		if name == "" {
			return "", fmt.Errorf("role: name is required")
		}
		// A role that exists already (a server brought back on the volume a destroyed stack kept)
		// is adopted: given every attribute, membership and setting declared, password included.
		if found, err := c.exists(ctx, "SELECT 1 FROM pg_roles WHERE rolname = $1", name); err != nil {
			return "", err
		} else if found {
			return roleUpdate(ctx, c, name, props{}, in)
		}
		stmts := []string{"CREATE ROLE " + ident(name) + " WITH " + roleOptions(c, in, true)}
		for _, r := range strs(in, "roles") {
			stmts = append(stmts, "GRANT "+ident(r)+" TO "+ident(name))
		}
		stmts = append(stmts, roleSettings(name, in)...)
		return name, c.exec(ctx, "", stmts...)
	},
	update: roleUpdate,
	remove: func(ctx context.Context, c config, id string, olds props) error {
		name := str(olds, "name")
		if boolean(olds, "skipDropRole", false) {
			return nil
		}
		var stmts []string
		if !boolean(olds, "skipReassignOwned", false) {
			if !c.superuser {
				// REASSIGN/DROP OWNED need membership in the role (the TF provider grants it too)
				stmts = append(stmts, "GRANT "+ident(name)+" TO CURRENT_USER")
			}
			stmts = append(stmts, "REASSIGN OWNED BY "+ident(name)+" TO CURRENT_USER",
				"DROP OWNED BY "+ident(name))
		}
		stmts = append(stmts, "DROP ROLE IF EXISTS "+ident(name))
		return c.exec(ctx, "", stmts...)
	},
}

func roleUpdate(ctx context.Context, c config, id string, olds, news props) (string, error) {
	oldName, name := str(olds, "name"), str(news, "name")
	var stmts []string
	if oldName != "" && oldName != name {
		stmts = append(stmts, "ALTER ROLE "+ident(oldName)+" RENAME TO "+ident(name))
	}
	// a rename clears an MD5 password, so the password is always (re)set when given
	stmts = append(stmts, "ALTER ROLE "+ident(name)+" WITH "+roleOptions(c, news, false))
	oldRoles, newRoles := set(strs(olds, "roles")), set(strs(news, "roles"))
	for r := range oldRoles {
		if !newRoles[r] {
			stmts = append(stmts, "REVOKE "+ident(r)+" FROM "+ident(name))
		}
	}
	for r := range newRoles {
		if !oldRoles[r] {
			stmts = append(stmts, "GRANT "+ident(r)+" TO "+ident(name))
		}
	}
	stmts = append(stmts, roleSettings(name, news)...)
	return name, c.exec(ctx, "", stmts...)
}

func set(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func roleOptions(c config, in props, creating bool) string {
	opts := []string{
		flag(boolean(in, "login", false), "LOGIN", "NOLOGIN"),
		flag(boolean(in, "createDatabase", false), "CREATEDB", "NOCREATEDB"),
		flag(boolean(in, "createRole", false), "CREATEROLE", "NOCREATEROLE"),
		flag(boolean(in, "inherit", true), "INHERIT", "NOINHERIT"),
		"CONNECTION LIMIT " + strconv.Itoa(integer(in, "connectionLimit", -1)),
	}
	// attributes only a superuser may set (or reset) are left out otherwise, like the TF provider
	if c.superuser {
		opts = append(opts,
			flag(boolean(in, "superuser", false), "SUPERUSER", "NOSUPERUSER"),
			flag(boolean(in, "replication", false), "REPLICATION", "NOREPLICATION"),
			flag(boolean(in, "bypassRowLevelSecurity", false), "BYPASSRLS", "NOBYPASSRLS"))
	}
	if pw := str(in, "password"); pw != "" {
		opts = append(opts, "PASSWORD "+literal(pw))
	} else if !creating {
		opts = append(opts, "PASSWORD NULL")
	}
	if vu := str(in, "validUntil"); vu != "" {
		opts = append(opts, "VALID UNTIL "+literal(vu))
	}
	return strings.Join(opts, " ")
}

func roleSettings(name string, in props) []string {
	r := ident(name)
	var stmts []string
	if paths := strs(in, "searchPaths"); len(paths) > 0 {
		q := make([]string, len(paths))
		for i, p := range paths {
			q[i] = ident(p)
		}
		stmts = append(stmts, "ALTER ROLE "+r+" SET search_path TO "+strings.Join(q, ", "))
	} else {
		stmts = append(stmts, "ALTER ROLE "+r+" RESET search_path")
	}
	for key, setting := range map[string]string{
		"statementTimeout":                "statement_timeout",
		"idleInTransactionSessionTimeout": "idle_in_transaction_session_timeout",
	} {
		if v := integer(in, key, 0); v > 0 {
			stmts = append(stmts, "ALTER ROLE "+r+" SET "+setting+" TO "+strconv.Itoa(v))
		} else {
			stmts = append(stmts, "ALTER ROLE "+r+" RESET "+setting)
		}
	}
	if ar := str(in, "assumeRole"); ar != "" {
		stmts = append(stmts, "ALTER ROLE "+r+" SET role TO "+ident(ar))
	}
	return stmts
}

// ---------------------------------------------------------------------------------------------
// Database

var databaseKind = &kind{
	replaceOn: []string{"template", "encoding", "lcCollate", "lcCtype", "tablespaceName"},
	defaults: map[string]resource.PropertyValue{
		"template": s("template0"), "encoding": s("UTF8"), "connectionLimit": n(-1),
		"allowConnections": b(true), "isTemplate": b(false), "alterObjectOwnership": b(false),
	},
	create: func(ctx context.Context, c config, in props) (string, error) {
		name := str(in, "name")
		if name == "" {
			return "", fmt.Errorf("database: name is required")
		}
		// adopted when it exists already, as roles are: its owner and limits set as declared
		if found, err := c.exists(ctx, "SELECT 1 FROM pg_database WHERE datname = $1", name); err != nil {
			return "", err
		} else if found {
			return databaseUpdate(ctx, c, name, props{}, in)
		}
		q := "CREATE DATABASE " + ident(name)
		if o := str(in, "owner"); o != "" {
			q += " OWNER " + ident(o)
		}
		q += " TEMPLATE " + ident(str(in, "template")) + " ENCODING " + literal(str(in, "encoding"))
		if v := str(in, "lcCollate"); v != "" && v != "DEFAULT" {
			q += " LC_COLLATE " + literal(v)
		}
		if v := str(in, "lcCtype"); v != "" && v != "DEFAULT" {
			q += " LC_CTYPE " + literal(v)
		}
		if v := str(in, "tablespaceName"); v != "" {
			q += " TABLESPACE " + ident(v)
		}
		q += " CONNECTION LIMIT " + strconv.Itoa(integer(in, "connectionLimit", -1)) +
			" ALLOW_CONNECTIONS " + strconv.FormatBool(boolean(in, "allowConnections", true)) +
			" IS_TEMPLATE " + strconv.FormatBool(boolean(in, "isTemplate", false))
		stmts := []string{q}
		if o := str(in, "owner"); o != "" && !c.superuser {
			// a non-superuser may only create databases for roles it belongs to
			stmts = append([]string{"GRANT " + ident(o) + " TO CURRENT_USER"}, stmts...)
		}
		return name, c.execEach(ctx, "", stmts...)
	},
	update: databaseUpdate,
	remove: func(ctx context.Context, c config, id string, olds props) error {
		name := str(olds, "name")
		stmts := []string{}
		if boolean(olds, "isTemplate", false) {
			stmts = append(stmts, "ALTER DATABASE "+ident(name)+" IS_TEMPLATE false")
		}
		stmts = append(stmts,
			"ALTER DATABASE "+ident(name)+" ALLOW_CONNECTIONS false",
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "+literal(name)+
				" AND pid <> pg_backend_pid()",
			"DROP DATABASE IF EXISTS "+ident(name))
		return c.execEach(ctx, "", stmts...)
	},
}

func databaseUpdate(ctx context.Context, c config, id string, olds, news props) (string, error) {
	oldName, name := str(olds, "name"), str(news, "name")
	var stmts []string
	if oldName != "" && oldName != name {
		stmts = append(stmts, "ALTER DATABASE "+ident(oldName)+" RENAME TO "+ident(name))
	}
	if o := str(news, "owner"); o != "" && o != str(olds, "owner") {
		stmts = append(stmts, "ALTER DATABASE "+ident(name)+" OWNER TO "+ident(o))
	}
	stmts = append(stmts, "ALTER DATABASE "+ident(name)+
		" WITH CONNECTION LIMIT "+strconv.Itoa(integer(news, "connectionLimit", -1))+
		" ALLOW_CONNECTIONS "+strconv.FormatBool(boolean(news, "allowConnections", true))+
		" IS_TEMPLATE "+strconv.FormatBool(boolean(news, "isTemplate", false)))
	return name, c.execEach(ctx, "", stmts...)
}

// ---------------------------------------------------------------------------------------------
// Schema

var schemaKind = &kind{
	replaceOn: []string{"database"},
	defaults:  map[string]resource.PropertyValue{"ifNotExists": b(true), "dropCascade": b(false)},
	create: func(ctx context.Context, c config, in props) (string, error) {
		name, db := str(in, "name"), str(in, "database")
		q := "CREATE SCHEMA "
		if boolean(in, "ifNotExists", true) {
			q += "IF NOT EXISTS "
		}
		q += ident(name)
		stmts := []string{}
		if o := str(in, "owner"); o != "" {
			q += " AUTHORIZATION " + ident(o)
			stmts = append(stmts, q, "ALTER SCHEMA "+ident(name)+" OWNER TO "+ident(o))
		} else {
			stmts = append(stmts, q)
		}
		return schemaID(c, db, name), c.exec(ctx, db, stmts...)
	},
	update: func(ctx context.Context, c config, id string, olds, news props) (string, error) {
		oldName, name, db := str(olds, "name"), str(news, "name"), str(news, "database")
		var stmts []string
		if oldName != name {
			stmts = append(stmts, "ALTER SCHEMA "+ident(oldName)+" RENAME TO "+ident(name))
		}
		if o := str(news, "owner"); o != "" {
			stmts = append(stmts, "ALTER SCHEMA "+ident(name)+" OWNER TO "+ident(o))
		}
		return schemaID(c, db, name), c.exec(ctx, db, stmts...)
	},
	remove: func(ctx context.Context, c config, id string, olds props) error {
		mode := " RESTRICT"
		if boolean(olds, "dropCascade", false) {
			mode = " CASCADE"
		}
		return c.exec(ctx, str(olds, "database"), "DROP SCHEMA IF EXISTS "+ident(str(olds, "name"))+mode)
	},
}

func schemaID(c config, db, name string) string {
	if db == "" {
		db = c.database
	}
	return db + "." + name
}

// ---------------------------------------------------------------------------------------------
// Grant: revoke everything of the object type from the role, then grant the listed privileges

var grantKind = &kind{
	replaceAll:  true,
	deleteFirst: true,
	defaults:    map[string]resource.PropertyValue{"withGrantOption": b(false)},
	create: func(ctx context.Context, c config, in props) (string, error) {
		target, err := grantTarget(in)
		if err != nil {
			return "", err
		}
		role := roleRef(str(in, "role"))
		stmts := []string{"REVOKE ALL PRIVILEGES ON " + target + " FROM " + role}
		if privs := strs(in, "privileges"); len(privs) > 0 {
			q := "GRANT " + strings.Join(upper(privs), ", ") + " ON " + target + " TO " + role
			if boolean(in, "withGrantOption", false) {
				q += " WITH GRANT OPTION"
			}
			stmts = append(stmts, q)
		}
		return strings.Join([]string{str(in, "role"), str(in, "database"), str(in, "schema"),
			str(in, "objectType")}, "_"), c.exec(ctx, str(in, "database"), stmts...)
	},
	remove: func(ctx context.Context, c config, id string, olds props) error {
		target, err := grantTarget(olds)
		if err != nil {
			return err
		}
		return c.exec(ctx, str(olds, "database"),
			"REVOKE ALL PRIVILEGES ON "+target+" FROM "+roleRef(str(olds, "role")))
	},
}

func upper(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.ToUpper(x)
	}
	return out
}

func grantTarget(in props) (string, error) {
	db, schema, objType := str(in, "database"), str(in, "schema"), strings.ToLower(str(in, "objectType"))
	objects := strs(in, "objects")
	qualified := func() string {
		q := make([]string, len(objects))
		for i, o := range objects {
			q[i] = ident(schema) + "." + ident(o)
		}
		return strings.Join(q, ", ")
	}
	switch objType {
	case "database":
		return "DATABASE " + ident(db), nil
	case "schema":
		if schema == "" {
			return "", fmt.Errorf("grant: schema is required for object_type schema")
		}
		return "SCHEMA " + ident(schema), nil
	case "table", "sequence", "function", "procedure", "routine":
		if schema == "" {
			return "", fmt.Errorf("grant: schema is required for object_type %s", objType)
		}
		kw := strings.ToUpper(objType)
		if len(objects) == 0 {
			return "ALL " + kw + "S IN SCHEMA " + ident(schema), nil
		}
		return kw + " " + qualified(), nil
	}
	return "", fmt.Errorf("grant: object_type %q is not supported by the pgfleet stand-in provider", objType)
}

// ---------------------------------------------------------------------------------------------
// GrantRole

var grantRoleKind = &kind{
	replaceAll:  true,
	deleteFirst: true,
	defaults:    map[string]resource.PropertyValue{"withAdminOption": b(false)},
	create: func(ctx context.Context, c config, in props) (string, error) {
		q := "GRANT " + ident(str(in, "grantRole")) + " TO " + ident(str(in, "role"))
		if boolean(in, "withAdminOption", false) {
			q += " WITH ADMIN OPTION"
		}
		return str(in, "role") + "_" + str(in, "grantRole"), c.exec(ctx, "", q)
	},
	remove: func(ctx context.Context, c config, id string, olds props) error {
		return c.exec(ctx, "", "REVOKE "+ident(str(olds, "grantRole"))+" FROM "+ident(str(olds, "role")))
	},
}

// ---------------------------------------------------------------------------------------------
// DefaultPrivileges

var defaultPrivilegesKind = &kind{
	replaceAll:  true,
	deleteFirst: true,
	defaults:    map[string]resource.PropertyValue{"withGrantOption": b(false)},
	create: func(ctx context.Context, c config, in props) (string, error) {
		prefix, what, err := defaultPrivTarget(in)
		if err != nil {
			return "", err
		}
		role := roleRef(str(in, "role"))
		stmts := []string{prefix + " REVOKE ALL ON " + what + " FROM " + role}
		if privs := strs(in, "privileges"); len(privs) > 0 {
			q := prefix + " GRANT " + strings.Join(upper(privs), ", ") + " ON " + what + " TO " + role
			if boolean(in, "withGrantOption", false) {
				q += " WITH GRANT OPTION"
			}
			stmts = append(stmts, q)
		}
		return strings.Join([]string{str(in, "role"), str(in, "database"), str(in, "schema"),
				str(in, "owner"), str(in, "objectType")}, "_"),
			c.exec(ctx, str(in, "database"), withOwnerMembership(c, str(in, "owner"), stmts...)...)
	},
	remove: func(ctx context.Context, c config, id string, olds props) error {
		prefix, what, err := defaultPrivTarget(olds)
		if err != nil {
			return err
		}
		return c.exec(ctx, str(olds, "database"), withOwnerMembership(c, str(olds, "owner"),
			prefix+" REVOKE ALL ON "+what+" FROM "+roleRef(str(olds, "role")))...)
	},
}

// withOwnerMembership wraps statements that must run as a member of owner when the provider is
// not a superuser (the TF provider grants the role temporarily in the same way).
func withOwnerMembership(c config, owner string, stmts ...string) []string {
	if c.superuser || owner == "" {
		return stmts
	}
	out := []string{"GRANT " + ident(owner) + " TO CURRENT_USER"}
	out = append(out, stmts...)
	return out
}

func defaultPrivTarget(in props) (string, string, error) {
	prefix := "ALTER DEFAULT PRIVILEGES FOR ROLE " + ident(str(in, "owner"))
	if sch := str(in, "schema"); sch != "" {
		prefix += " IN SCHEMA " + ident(sch)
	}
	switch t := strings.ToLower(str(in, "objectType")); t {
	case "table", "sequence", "function", "type", "schema", "routine":
		if t == "schema" && str(in, "schema") != "" {
			return "", "", fmt.Errorf("default privileges on schemas cannot be limited to a schema")
		}
		return prefix, strings.ToUpper(t) + "S", nil
	default:
		return "", "", fmt.Errorf("default privileges: unsupported object_type %q", t)
	}
}

// ---------------------------------------------------------------------------------------------
// Extension

var extensionKind = &kind{
	replaceOn:   []string{"database", "name"},
	deleteFirst: true,
	defaults:    map[string]resource.PropertyValue{"createCascade": b(false), "dropCascade": b(false)},
	create: func(ctx context.Context, c config, in props) (string, error) {
		name, db := str(in, "name"), str(in, "database")
		q := "CREATE EXTENSION IF NOT EXISTS " + ident(name)
		if sch := str(in, "schema"); sch != "" {
			q += " SCHEMA " + ident(sch)
		}
		if v := str(in, "version"); v != "" {
			q += " VERSION " + literal(v)
		}
		if boolean(in, "createCascade", false) {
			q += " CASCADE"
		}
		return schemaID(c, db, name), c.exec(ctx, db, q)
	},
	update: func(ctx context.Context, c config, id string, olds, news props) (string, error) {
		name, db := str(news, "name"), str(news, "database")
		var stmts []string
		if sch := str(news, "schema"); sch != "" && sch != str(olds, "schema") {
			stmts = append(stmts, "ALTER EXTENSION "+ident(name)+" SET SCHEMA "+ident(sch))
		}
		if v := str(news, "version"); v != "" && v != str(olds, "version") {
			stmts = append(stmts, "ALTER EXTENSION "+ident(name)+" UPDATE TO "+literal(v))
		}
		return schemaID(c, db, name), c.exec(ctx, db, stmts...)
	},
	remove: func(ctx context.Context, c config, id string, olds props) error {
		q := "DROP EXTENSION IF EXISTS " + ident(str(olds, "name"))
		if boolean(olds, "dropCascade", false) {
			q += " CASCADE"
		}
		return c.exec(ctx, str(olds, "database"), q)
	},
}
