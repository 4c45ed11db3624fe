package httpapi

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// Query parameters of GET /portcullis/v1/decisions (and the CLI flags of
// `portcullis audit query`, which have the same names).
const (
	ParamDigest         = "digest"
	ParamRepository     = "repository"
	ParamAction         = "action"
	ParamVerdict        = "verdict"
	ParamActor          = "actor"
	ParamPolicyRevision = "policyRevision"
	ParamNamespace      = "namespace"
	ParamSince          = "since" // RFC 3339
	ParamUntil          = "until" // RFC 3339
	ParamOrder          = "order" // asc or desc (default)
	ParamCursor         = "cursor"
	ParamLimit          = "limit"
)

// FilterParams lists the query parameters ParseFilter accepts, in the
// order of the documentation.
var FilterParams = []string{ParamDigest, ParamRepository, ParamAction, ParamVerdict, ParamActor,
	ParamPolicyRevision, ParamNamespace, ParamSince, ParamUntil, ParamOrder, ParamCursor, ParamLimit}

// FilterValues encodes f as query parameters, as ParseFilter reads them.
func FilterValues(f audit.Filter) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set(ParamDigest, f.Digest)
	set(ParamRepository, f.Repository)
	set(ParamAction, f.Action)
	set(ParamVerdict, f.Verdict)
	set(ParamActor, f.Actor)
	set(ParamPolicyRevision, f.PolicyRevision)
	set(ParamNamespace, f.Namespace)
	if !f.Since.IsZero() {
		v.Set(ParamSince, f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set(ParamUntil, f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Ascending {
		v.Set(ParamOrder, "asc")
	}
	if f.After != nil {
		v.Set(ParamCursor, strconv.FormatUint(*f.After, 10))
	}
	if f.Limit > 0 {
		v.Set(ParamLimit, strconv.Itoa(f.Limit))
	}
	return v
}

// ParseFilter decodes query parameters into a Filter, rejecting bad values
// and unknown parameters (a mistyped filter would otherwise match
// everything).
func ParseFilter(v url.Values) (audit.Filter, error) {
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if !slices.Contains(FilterParams, k) {
			return audit.Filter{}, fmt.Errorf("unknown parameter %q: want %s", k, strings.Join(FilterParams, ", "))
		}
	}
	f := audit.Filter{
		Digest:         v.Get(ParamDigest),
		Repository:     v.Get(ParamRepository),
		Action:         v.Get(ParamAction),
		Verdict:        v.Get(ParamVerdict),
		Actor:          v.Get(ParamActor),
		PolicyRevision: v.Get(ParamPolicyRevision),
		Namespace:      v.Get(ParamNamespace),
	}
	switch f.Action {
	case "", audit.ActionPush, audit.ActionPromote, audit.ActionAdmit, audit.ActionBreakGlass, audit.ActionDelete:
	default:
		return f, fmt.Errorf("action %q: want push, promote, admit, break-glass or delete", f.Action)
	}
	switch f.Verdict {
	case "", audit.VerdictAllow, audit.VerdictDeny, audit.VerdictError:
	default:
		return f, fmt.Errorf("verdict %q: want allow, deny or error", f.Verdict)
	}
	var err error
	if f.Since, err = parseTime(v, ParamSince); err != nil {
		return f, err
	}
	if f.Until, err = parseTime(v, ParamUntil); err != nil {
		return f, err
	}
	switch v.Get(ParamOrder) {
	case "", "desc":
	case "asc":
		f.Ascending = true
	default:
		return f, fmt.Errorf("order %q: want asc or desc", v.Get(ParamOrder))
	}
	if f.After, err = audit.ParseCursor(v.Get(ParamCursor)); err != nil {
		return f, err
	}
	if s := v.Get(ParamLimit); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return f, fmt.Errorf("limit %q: want 1 to %d", s, audit.MaxLimit)
		}
		f.Limit = n
	}
	return f, nil
}

func parseTime(v url.Values, key string) (time.Time, error) {
	s := v.Get(key)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time", key, s)
	}
	return t, nil
}
