package webhook

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

// RevisionReporter is an optional capability of a [Decider]: the policy
// revision it would decide a target with now (*gate.Gate has it). When the
// decider has it, a cached decision is reused only while its revision is
// the current one for its target, so a policy reload takes effect at once.
type RevisionReporter interface {
	RevisionFor(t policy.Target) string
}

// CacheStats counts decision cache lookups.
type CacheStats struct {
	Hits, Misses uint64
}

// decisionCache keeps decisions by (digest, namespace). The policy
// revision is known only after evaluating, so an entry stores the revision
// it was decided under and is dropped when a fresh decision reports
// another one (or, if the decider is a [RevisionReporter], as soon as the
// current revision differs). Between a policy reload and the first fresh
// decision an entry can outlive its revision by at most its TTL.
//
// The key deliberately leaves out the workload, container, user, service
// account and labels: a policy that decides on those must be run with a
// cache TTL it can tolerate, or with the cache off (CacheSize < 0).
// Decisions with an error are never cached.
type decisionCache struct {
	mu       sync.Mutex
	m        map[cacheKey]cacheEntry
	max      int
	allowTTL time.Duration
	denyTTL  time.Duration
	now      func() time.Time
	rev      atomic.Pointer[string] // the latest revision seen
	hits     atomic.Uint64
	misses   atomic.Uint64
}

type cacheKey struct {
	digest    digest.Digest
	namespace string
}

type cacheEntry struct {
	d       *gate.Decision
	expires time.Time
}

func newDecisionCache(max int, allowTTL, denyTTL time.Duration, now func() time.Time) *decisionCache {
	if max <= 0 {
		return nil
	}
	return &decisionCache{m: make(map[cacheKey]cacheEntry), max: max, allowTTL: allowTTL, denyTTL: denyTTL, now: now}
}

// get returns a live decision; current is the decider's revision now, or
// "" if it cannot tell.
func (c *decisionCache) get(d digest.Digest, ns, current string) (*gate.Decision, bool) {
	if c == nil {
		return nil, false
	}
	if current == "" {
		if p := c.rev.Load(); p != nil {
			current = *p
		}
	}
	k := cacheKey{d, ns}
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && (c.now().After(e.expires) || (current != "" && e.d.Revision != current)) {
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

// put stores a fresh decision unless it carries an error.
func (c *decisionCache) put(d digest.Digest, ns string, dec *gate.Decision) {
	if c == nil || dec == nil || dec.Error != "" {
		return
	}
	if dec.Revision != "" {
		if p := c.rev.Load(); p == nil || *p != dec.Revision {
			r := dec.Revision
			c.rev.Store(&r)
		}
	}
	ttl := c.allowTTL
	if !dec.Allow {
		ttl = c.denyTTL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[cacheKey{d, ns}]; !ok && len(c.m) >= c.max {
		c.evict()
	}
	c.m[cacheKey{d, ns}] = cacheEntry{d: dec, expires: c.now().Add(ttl)}
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
