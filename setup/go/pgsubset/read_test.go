package main

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func TestMilliseconds(t *testing.T) {
	for in, want := range map[string]int{"": 0, "30000": 30000, "30s": 30000, "1min": 60000, "250ms": 250, "2h": 7_200_000} {
		if got, err := milliseconds(in); err != nil || got != want {
			t.Errorf("milliseconds(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := milliseconds("soon"); err == nil {
		t.Error("milliseconds(\"soon\") read a value")
	}
}

func TestSearchPath(t *testing.T) {
	got := searchPath(`orders, "My ""x""", public`)
	want := []string{"orders", `My "x"`, "public"}
	if !equalStrings(got, want) {
		t.Errorf("searchPath = %q, want %q", got, want)
	}
}

func TestSamePrivileges(t *testing.T) {
	for _, c := range []struct {
		objType  string
		recorded []string
		actual   []string
		same     bool
	}{
		{"database", []string{"connect"}, []string{"CONNECT"}, true},
		{"database", nil, []string{"CONNECT"}, false}, // CONNECT granted to PUBLIC by hand
		{"database", []string{"CONNECT"}, nil, false}, // CONNECT revoked by hand
		{"database", []string{"ALL"}, []string{"CONNECT", "CREATE", "TEMPORARY"}, true},
		{"database", []string{"TEMP", "CONNECT"}, []string{"TEMPORARY", "CONNECT"}, true},
		{"table", []string{"SELECT", "INSERT"}, []string{"INSERT", "SELECT", "DELETE"}, false},
	} {
		rec := make([]resource.PropertyValue, len(c.recorded))
		for i, p := range c.recorded {
			rec[i] = s(p)
		}
		if got := samePrivileges(c.objType, c.actual)(resource.NewArrayProperty(rec)); got != c.same {
			t.Errorf("%s %v vs %v: same = %v", c.objType, c.recorded, c.actual, got)
		}
	}
}

// A refresh keeps recorded values that mean what the catalog holds (so no diff), writes in
// the ones that changed, and keeps a secret a secret.
func TestMerge(t *testing.T) {
	rec := props{
		"connectionLimit": n(20), "superuser": s("false"), "password": resource.MakeSecret(s("pw")),
		"roles": array([]string{"b", "a"}),
	}
	f := facts{
		"connectionLimit": {value: n(20)},
		"superuser":       {value: b(true)},
		"roles":           {value: array([]string{"a", "b"}), absent: noStrings, same: sameSet([]string{"a", "b"}, false)},
		"searchPaths":     {value: array(nil), absent: noStrings},
		"owner":           {value: s("postgres")}, // computed: not recorded, so not written in
		"assumeRole":      {value: s("x"), absent: noString},
	}
	got := f.merge(rec)
	if !got["connectionLimit"].DeepEquals(n(20)) || !got["roles"].DeepEquals(array([]string{"b", "a"})) {
		t.Errorf("unchanged values rewritten: %v", got)
	}
	if !got["superuser"].DeepEquals(b(true)) {
		t.Errorf("superuser drift lost: %v", got["superuser"])
	}
	if _, ok := got["searchPaths"]; ok {
		t.Errorf("an unset search_path was written in")
	}
	if _, ok := got["owner"]; ok {
		t.Errorf("a computed value was written in")
	}
	if !got["assumeRole"].DeepEquals(s("x")) || !got["password"].IsSecret() {
		t.Errorf("merge = %v", got)
	}
}
