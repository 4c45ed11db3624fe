package webhook

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

// RevisionReporter is an optional capability of a [Decider]: the policy
// revision it would decide a target with now (*gate.Gate has it). When the
// decider has it, a cached decision is reused only under the current
// revision for its target, so a policy reload takes effect at once.
type RevisionReporter interface {
	RevisionFor(t contract.Target) string
}

// TrustReporter is an optional capability of a [Decider]: the revision of
// the trust configuration it verifies evidence under now (*gate.Gate has
// it). When the decider has it, a cached decision is reused only under the
// current trust revision, so a replaced or revoked key takes effect at
// once.
type TrustReporter interface {
	TrustRevision() string
}

// CacheStats counts decision cache lookups.
type CacheStats struct {
	Hits, Misses uint64
}

// decisionCache keeps decisions by everything they depend on (I4): the
// whole request the gate was asked (the reference as written, the tag and
// resolved registry, repository and digest, the namespace and its labels,
// the workload, the container, the user, the service account and the pod
// labels: everything policy sees but the evidence), the policy revision
// and the trust revision the decision was taken under. The evidence
// itself is the gate's to vouch for (its own cache is bound to the
// evidence stored with the image, a VSA to the evidence it carries).
//
// Revisions come from the decider when it reports them ([RevisionReporter],
// [TrustReporter]); otherwise a lookup uses the latest revision a fresh
// decision reported, so that between a change and the first fresh
// decision an entry can outlive its revision by at most its TTL.
// Decisions with an error are never cached.
type decisionCache struct {
	mu       sync.Mutex
	m        map[cacheKey]cacheEntry
	max      int
	allowTTL time.Duration
	denyTTL  time.Duration
	now      func() time.Time
	rev      atomic.Pointer[string] // the latest policy revision seen
	trust    atomic.Pointer[string] // the latest trust revision seen
	hits     atomic.Uint64
	misses   atomic.Uint64
}

// cacheKey is the SHA-256 of a request and its revisions ([requestKey]).
type cacheKey [sha256.Size]byte

type cacheEntry struct {
	d       *contract.Decision
	expires time.Time
}

func newDecisionCache(max int, allowTTL, denyTTL time.Duration, now func() time.Time) *decisionCache {
	if max <= 0 {
		return nil
	}
	return &decisionCache{m: make(map[cacheKey]cacheEntry), max: max, allowTTL: allowTTL, denyTTL: denyTTL, now: now}
}

// get returns a live decision for req; policyRev and trustRev are the
// decider's revisions now, or "" if it cannot tell.
func (c *decisionCache) get(req *contract.Request, policyRev, trustRev string) (*contract.Decision, bool) {
	if c == nil {
		return nil, false
	}
	if policyRev == "" {
		if p := c.rev.Load(); p != nil {
			policyRev = *p
		}
	}
	if trustRev == "" {
		if p := c.trust.Load(); p != nil {
			trustRev = *p
		}
	}
	k := requestKey(req, policyRev, trustRev)
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && c.now().After(e.expires) {
		delete(c.m, k)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e.d, true
}

// put stores a fresh decision on req unless it carries an error, under
// the revisions it reports it was taken under.
func (c *decisionCache) put(req *contract.Request, dec *contract.Decision) {
	if c == nil || dec == nil || dec.Error != "" {
		return
	}
	latest := func(p *atomic.Pointer[string], r string) {
		if r != "" {
			if cur := p.Load(); cur == nil || *cur != r {
				p.Store(&r)
			}
		}
	}
	latest(&c.rev, dec.Revision)
	latest(&c.trust, dec.TrustRevision)
	ttl := c.allowTTL
	if !dec.Allow {
		ttl = c.denyTTL
	}
	k := requestKey(req, dec.Revision, dec.TrustRevision)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.evict()
	}
	c.m[k] = cacheEntry{d: dec, expires: c.now().Add(ttl)}
}

// evict drops expired entries, or any one entry if none has expired.
// Called with mu held.
func (c *decisionCache) evict() {
	now := c.now()
	n := len(c.m)
	for k, e := range c.m {
		if now.After(e.expires) {
			delete(c.m, k)
		}
	}
	if len(c.m) < n {
		return
	}
	for k := range c.m {
		delete(c.m, k)
		return
	}
}

func (c *decisionCache) stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load()}
}

// requestKey hashes every field of req policy can see, and the revisions,
// in a canonical form: each string length-prefixed, maps in key order, a
// marker for each absent pointer. TestRequestKeyCoversRequest fails when a
// field is added to contract.Request and not here.
func requestKey(req *contract.Request, policyRev, trustRev string) cacheKey {
	h := sha256.New()
	kw := keyWriter{h: h}
	kw.str("portcullis-admission-v1", policyRev, trustRev)
	kw.str(string(req.Action), req.Registry, req.Repository, req.Digest.String(), req.Tag, req.Reference)
	if t := req.Target.Registry; t != nil {
		kw.str("registry", t.Namespace, t.Repository, t.Tag)
	} else {
		kw.str("")
	}
	if t := req.Target.Kubernetes; t != nil {
		kw.str("kubernetes", t.Namespace)
		kw.labels(t.NamespaceLabels)
		kw.str(t.Workload.Kind, t.Workload.Name, t.Container)
	} else {
		kw.str("")
	}
	if id := req.Actor.Identity; id != nil {
		kw.str("identity", id.Name)
		kw.list(id.Groups)
	} else {
		kw.str("")
	}
	kw.str(req.Actor.ServiceAccount)
	kw.labels(req.Actor.PodLabels)
	// LeftBehind is a promotion's and policy does not see it. Enforcement
	// is not what is decided but what the webhook does with it: the record
	// of a cached decision takes the current request's (RecordCached).
	var k cacheKey
	h.Sum(k[:0])
	return k
}

type keyWriter struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (w *keyWriter) str(ss ...string) {
	for _, s := range ss {
		n := binary.PutUvarint(w.buf[:], uint64(len(s)))
		w.h.Write(w.buf[:n])
		w.h.Write([]byte(s))
	}
}

func (w *keyWriter) list(ss []string) {
	n := binary.PutUvarint(w.buf[:], uint64(len(ss)))
	w.h.Write(w.buf[:n])
	w.str(ss...)
}

func (w *keyWriter) labels(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := binary.PutUvarint(w.buf[:], uint64(len(keys)))
	w.h.Write(w.buf[:n])
	for _, k := range keys {
		w.str(k, m[k])
	}
}
