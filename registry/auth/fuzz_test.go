package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// Parsers of untrusted input must not panic, and what they accept must
// be well-formed.

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:staging/app:pull,push", "registry:catalog:*", "repository:a:b:c", ":", "a::b", "repository:x:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseScope(s)
		if err != nil {
			return
		}
		if a.Type == "" || a.Name == "" || len(a.Actions) == 0 {
			t.Fatalf("ParseScope(%q) = %+v: empty part accepted", s, a)
		}
	})
}

func FuzzParseHtpasswd(f *testing.F) {
	f.Add("alice:$2y$05$abcdefghijklmnopqrstuu5H0pJ1aYhE1z6Q3m9c8kqC3o7V8yXKa\n# comment\n\nbob:x")
	f.Fuzz(func(t *testing.T, s string) {
		users, err := ParseHtpasswd([]byte(s))
		if err != nil {
			return
		}
		for u := range users {
			if u == "" || strings.ContainsAny(u, ":\n") {
				t.Fatalf("user %q accepted", u)
			}
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts := NewTokenService(key, "portcullis", "portcullis", time.Minute)
	good, _, _ := ts.Issue(&Principal{Name: "alice", Kind: KindUser}, []Access{{Type: "repository", Name: "a", Actions: []string{"pull"}}})
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ts.verify(s)
		// Only the claims signed can pass (an encoding variant of the same
		// token may).
		if err == nil && (c.Subject != "alice" || len(c.Access) != 1 || c.Access[0].Name != "a" || strings.Join(c.Access[0].Actions, ",") != "pull") {
			t.Fatalf("verify accepted claims it did not sign: %q (%+v)", s, c)
		}
	})
}

func FuzzParseBasic(f *testing.F) {
	f.Add("YWxpY2U6cHc=")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = parseBasic(s)
	})
}
