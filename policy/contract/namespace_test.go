package contract_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

func TestInNamespace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		repo, ns string
		want     bool
	}{
		{"the namespace itself", "staging", "staging", true},
		{"below it", "staging/app", "staging", true},
		{"deep below it", "staging/team/app", "staging", true},
		{"a sibling sharing the prefix", "staging-old/app", "staging", false},
		{"a sibling repository sharing the prefix", "stagingapp", "staging", false},
		{"trailing slash on the namespace", "prod/app", "prod/", true},
		{"leading slash on the namespace", "prod/app", "/prod", true},
		{"trailing slash, sibling", "prod-old/app", "prod/", false},
		{"a nested namespace", "prod/team/app", "prod/team", true},
		{"a parent of the namespace", "prod", "prod/team", false},
		{"another namespace", "dev/app", "prod", false},
		{"empty namespace matches nothing", "app", "", false},
		{"slash-only namespace matches nothing", "app", "/", false},
		{"empty repository", "", "prod", false},
		{"case matters", "Prod/app", "prod", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := contract.InNamespace(tt.repo, tt.ns); got != tt.want {
				t.Errorf("InNamespace(%q, %q) = %v, want %v", tt.repo, tt.ns, got, tt.want)
			}
		})
	}
}
