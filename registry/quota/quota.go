// Package quota limits the storage of namespaces: the "quotas" section of
// portcullis.yaml, the check the registry runs when a blob is linked, and
// the usage report of "portcullis quota". It is storage accounting, not
// access control: it knows repositories and bytes, never identities.
package quota

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// Config is the "quotas" section: one entry per namespace.
type Config []Entry

// Entry is one entry of "quotas".
type Entry struct {
	Namespace string `json:"namespace"`
	// Size is e.g. "10GiB", "500MB" or a number of bytes.
	Size string `json:"size"`
}

// Validate checks every entry; its errors name the entry ("[1].size").
func (c Config) Validate() error {
	_, err := c.Rules()
	return err
}

// Rules returns the entries with their sizes in bytes.
func (c Config) Rules() ([]Rule, error) {
	var rules []Rule
	for i, e := range c {
		if strings.Trim(e.Namespace, "/") == "" {
			return nil, yamltypes.Errorf(fmt.Sprintf("[%d]", i), "a quota needs a namespace")
		}
		n, err := ParseBytes(e.Size)
		if err != nil {
			return nil, yamltypes.Errorf(fmt.Sprintf("[%d].size", i), "%w", err)
		}
		rules = append(rules, Rule{Namespace: e.Namespace, Limit: n})
	}
	if err := check(rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// Open returns the quota check over store, or nil, nil when the section
// is empty (no quota: the registry admits every blob).
func (c Config) Open(store metadata.Store) (*Quotas, error) {
	if len(c) == 0 {
		return nil, nil
	}
	rules, err := c.Rules()
	if err != nil {
		return nil, err
	}
	return New(rules, store)
}

// Rule limits the storage of a namespace (repository prefix).
type Rule struct {
	Namespace string
	Limit     int64 // bytes
}

// check refuses a bad namespace, a limit that is not positive and a
// namespace listed twice; its errors name the rule ("[1].namespace").
func check(rules []Rule) error {
	seen := map[string]bool{}
	for i, r := range rules {
		ns := strings.Trim(r.Namespace, "/")
		if err := registry.ValidateRepository(ns); err != nil {
			return yamltypes.Errorf(fmt.Sprintf("[%d].namespace", i), "%q: %w", r.Namespace, err)
		}
		if r.Limit <= 0 {
			return yamltypes.Errorf(fmt.Sprintf("[%d].size", i), "namespace %s: the limit must be positive", ns)
		}
		if seen[ns] {
			return yamltypes.Errorf(fmt.Sprintf("[%d].namespace", i), "namespace %s is listed twice", ns)
		}
		seen[ns] = true
	}
	return nil
}

// Quotas enforces storage quotas per namespace when a blob is linked (an
// upload completes, or a mount). It implements registry.Quota.
type Quotas struct {
	rules []Rule // longest namespace first
	usage metadata.UsageCounter
}

var _ registry.Quota = (*Quotas)(nil)

// New checks the rules; the store must count usage. No rules is a check
// that admits everything and reports usage only.
func New(rules []Rule, store metadata.Store) (*Quotas, error) {
	u, ok := store.(metadata.UsageCounter)
	if !ok {
		return nil, errors.New("quotas: the metadata store does not count usage")
	}
	if err := check(rules); err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	q := &Quotas{usage: u}
	for _, r := range rules {
		r.Namespace = strings.Trim(r.Namespace, "/")
		q.rules = append(q.rules, r)
	}
	sort.SliceStable(q.rules, func(i, j int) bool { return len(q.rules[i].Namespace) > len(q.rules[j].Namespace) })
	return q, nil
}

// rule returns the quota covering repo: the longest namespace holding it.
func (q *Quotas) rule(repo string) *Rule {
	for i := range q.rules {
		if contract.InNamespace(repo, q.rules[i].Namespace) {
			return &q.rules[i]
		}
	}
	return nil
}

// Admit implements registry.Quota: a blob the namespace already holds is
// free; any other must fit in what is left.
func (q *Quotas) Admit(ctx context.Context, repo string, d digest.Digest, size int64) error {
	r := q.rule(repo)
	if r == nil {
		return nil
	}
	has, err := q.usage.NamespaceHasBlob(ctx, r.Namespace, d)
	if err != nil || has {
		return err
	}
	used, err := q.usage.NamespaceUsage(ctx, r.Namespace)
	if err != nil {
		return err
	}
	if used+size > r.Limit {
		return &registry.QuotaError{Message: fmt.Sprintf("namespace %s is over its storage quota of %s: %s used, this blob needs %s more",
			r.Namespace, FormatBytes(r.Limit), FormatBytes(used), FormatBytes(size))}
	}
	return nil
}

// Usage is a namespace's storage.
type Usage struct {
	Namespace string `json:"namespace"`
	Used      int64  `json:"used"`
	// Limit is 0 without a quota.
	Limit int64 `json:"limit,omitempty"`
}

// Report returns the usage of every namespace with a quota and of the
// others given, by name.
func (q *Quotas) Report(ctx context.Context, others []string) ([]Usage, error) {
	limits := map[string]int64{}
	for _, r := range q.rules {
		limits[r.Namespace] = r.Limit
	}
	for _, ns := range others {
		if _, ok := limits[ns]; !ok {
			limits[ns] = 0
		}
	}
	var out []Usage
	for ns, limit := range limits {
		used, err := q.usage.NamespaceUsage(ctx, ns)
		if err != nil {
			return nil, err
		}
		out = append(out, Usage{Namespace: ns, Used: used, Limit: limit})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out, nil
}

// FormatBytes writes n in binary units (1.5 GiB).
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseBytes reads "500MiB", "10GB", "1048576" (bytes).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, or e.g. 500MiB, 10GB", s)
	}
	return int64(v * float64(mult)), nil
}
