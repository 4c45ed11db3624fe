package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

func bundleOf(files map[string]string) *Bundle {
	b := &Bundle{Source: "test"}
	for p, src := range files {
		b.Modules = append(b.Modules, Module{Path: p, Raw: []byte(src)})
	}
	return b
}

func testInput() *contract.Input {
	return allowedFixture().input()
}

func TestPolicyEngineCompileErrorsHaveLocations(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"parse error", map[string]string{"bad.rego": "package portcullis\n\ndeny contains msg if {\n\tmsg := \n}\n"}, "bad.rego:5"},
		{"unsafe variable", map[string]string{"bad.rego": "package portcullis\n\ndeny contains msg if {\n\tx == 1\n\tmsg := \"m\"\n}\n"}, "bad.rego:4"},
		{"rego v0 syntax", map[string]string{"old.rego": "package portcullis\n\ndeny[msg] {\n\tmsg := \"m\"\n}\n"}, "old.rego:3"},
		{"no deny rule", map[string]string{"p.rego": "package portcullis\n\nwarn contains \"w\"\n"}, "defines no rule data.portcullis.deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(context.Background(), bundleOf(tt.files))
			if err == nil {
				t.Fatalf("compiled; want an error (engine %v)", e)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

// TestPolicyEngineFailsClosed: every evaluation error is an error and a
// denial, never an allow.
func TestPolicyEngineFailsClosed(t *testing.T) {
	tests := []struct {
		name    string
		policy  string
		timeout time.Duration
		input   func() *contract.Input
		want    string
	}{
		{
			name: "loop exceeding the deadline",
			policy: `deny contains "never" if {
	some a in numbers.range(1, 5000)
	some b in numbers.range(1, 5000)
	a * b == -1
}`,
			timeout: 50 * time.Millisecond,
			want:    "cancel",
		},
		{name: "non-string deny", policy: `deny contains 42 if true`, want: "is a number, want a string or {msg, details}"},
		{name: "object without msg", policy: `deny contains {"message": "x"} if true`, want: `has no string "msg"`},
		{name: "details not an object", policy: `deny contains {"msg": "x", "details": [1]} if true`, want: "details is an array"},
		{name: "deny not a set", policy: `deny := "everything"`, want: "is a string, want a set of messages"},
		{name: "undefined decision", policy: `deny := {"x"} if input.no_such_field`, want: "decision is undefined"},
		{name: "built-in error", policy: `deny contains msg if {
	time.parse_ns("2006-01-02", "not a date") < 0
	msg := "m"
}`, want: "parsing time"},
		{name: "conflicting values", policy: `deny := {"a"} if true

deny := {"b"} if true`, want: "conflict"},
		{name: "input without apiVersion", policy: `deny := set()`, input: func() *contract.Input { in := testInput(); in.APIVersion = ""; return in }, want: "apiVersion"},
		{name: "input with unknown action", policy: `deny := set()`, input: func() *contract.Input { in := testInput(); in.Action = "delete"; return in }, want: "push, promote or admit"},
		{name: "nil input", policy: `deny := set()`, input: func() *contract.Input { return nil }, want: "apiVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.timeout > 0 {
				opts = append(opts, WithTimeout(tt.timeout))
			}
			e, err := NewEngine(context.Background(), bundleOf(map[string]string{"p.rego": "package portcullis\n\n" + tt.policy + "\n"}), opts...)
			if err != nil {
				t.Fatal(err)
			}
			in := testInput()
			if tt.input != nil {
				in = tt.input()
			}
			start := time.Now()
			d, err := e.Eval(context.Background(), in)
			if err == nil {
				t.Fatalf("no error; decision %+v", d)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if d.Allow || len(d.Deny) == 0 || d.Error == "" || d.Revision != e.Revision() {
				t.Errorf("decision %+v: want a denial carrying the error and the revision", d)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
		})
	}
}

func TestPolicyEngineHonoursCallerDeadline(t *testing.T) {
	e, err := NewEngine(context.Background(), bundleOf(map[string]string{"p.rego": `package portcullis

deny contains "never" if {
	some a in numbers.range(1, 5000)
	some b in numbers.range(1, 5000)
	a * b == -1
}
`}), WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	d, err := e.Eval(ctx, testInput())
	if err == nil || d.Allow {
		t.Fatalf("decision %+v, err %v: want a timeout denial", d, err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("the caller's 30ms deadline took %v to stop evaluation", el)
	}
}

func TestPolicyEngineMessages(t *testing.T) {
	e, err := NewEngine(context.Background(), bundleOf(map[string]string{"p.rego": `package portcullis

deny contains "b: plain string" if input.action == "promote"

deny contains {"msg": "a: with details", "details": {"n": 1}} if true

warn contains "careful" if true
`}))
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Eval(context.Background(), testInput())
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || len(d.Deny) != 2 || d.Deny[0].Msg != "a: with details" || d.Deny[1].Msg != "b: plain string" {
		t.Errorf("deny = %+v", d.Deny)
	}
	if n, _ := d.Deny[0].Details["n"]; n == nil {
		t.Errorf("details lost: %+v", d.Deny[0])
	}
	if len(d.Warn) != 1 || d.Warn[0].Msg != "careful" {
		t.Errorf("warn = %+v", d.Warn)
	}
}

func TestPolicyEngineAllowsWithoutWarnRule(t *testing.T) {
	e, err := NewEngine(context.Background(), bundleOf(map[string]string{"p.rego": "package portcullis\n\ndeny contains \"x\" if false\n"}))
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Eval(context.Background(), testInput())
	if err != nil || !d.Allow || len(d.Deny) != 0 || d.Warn == nil {
		t.Fatalf("decision %+v, err %v: want allow", d, err)
	}
}

func TestPolicyRevision(t *testing.T) {
	a := bundleOf(map[string]string{"p.rego": "package portcullis\n\ndeny := set()\n"})
	ra, _ := a.Revision()
	b := bundleOf(map[string]string{"p.rego": "package portcullis\n\ndeny := set()\n"})
	b.Data = map[string]any{"portcullis": map[string]any{"config": map[string]any{}}}
	rb, _ := b.Revision()
	c := bundleOf(map[string]string{"q.rego": "package portcullis\n\ndeny := set()\n"})
	rc, _ := c.Revision()
	if ra == rb || ra == rc || !strings.HasPrefix(ra, "sha256:") {
		t.Errorf("revisions %s %s %s: want distinct sha256 digests", ra, rb, rc)
	}
	if again, _ := a.Revision(); again != ra {
		t.Errorf("revision not stable: %s then %s", ra, again)
	}
}

func TestPolicyExplain(t *testing.T) {
	e := libraryEngine(t)
	f := allowedFixture()
	f.evidence.Signatures = nil
	var x Explanation
	d, err := e.Eval(context.Background(), f.input(), Explain(&x))
	if err != nil || d.Allow {
		t.Fatalf("decision %+v, err %v", d, err)
	}
	var rules []string
	for _, r := range x.Rules {
		rules = append(rules, r.Rule+"@"+r.Location)
	}
	got := strings.Join(rules, " ")
	if !strings.Contains(got, "data.portcullis.policies.signatures.deny@portcullis-library/signatures.rego:") {
		t.Errorf("explanation %q does not name the signatures rule", got)
	}
	if errors.Is(err, ErrUndefined) {
		t.Fatal("unexpected")
	}
}

func TestPolicyLicenseSummary(t *testing.T) {
	licenses, ids := licenseSummary([]string{"(MIT OR GPL-3.0-only)", "Apache License 2.0", "GPL-2.0-only WITH Classpath-exception-2.0", "MIT", "MIT"})
	if strings.Join(licenses, "|") != "(MIT OR GPL-3.0-only)|Apache License 2.0|GPL-2.0-only WITH Classpath-exception-2.0|MIT" {
		t.Errorf("licenses = %q", licenses)
	}
	if strings.Join(ids, "|") != "GPL-2.0-only|GPL-3.0-only|MIT" {
		t.Errorf("ids = %q", ids)
	}
}
