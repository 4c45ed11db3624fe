package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: Rate requests per second on average, bursts of
// up to Burst. A zero Rate is no limit.
type Rate struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// Limits are the rate and concurrency limits.
type Limits struct {
	// PerIdentity limits the requests of each authenticated identity.
	PerIdentity Rate
	// PerAddress limits the requests of each client address.
	PerAddress Rate
	// FailedAuth limits failed authentications per client address: once
	// spent, the address is answered 429 without its credentials being
	// checked (brute force is slowed, bcrypt's cost not paid).
	FailedAuth Rate
	// UploadsPerIdentity bounds the upload requests (POST, PATCH, PUT of
	// blob uploads) each identity has in flight; 0 is no limit.
	UploadsPerIdentity int
}

// limiters keeps a token bucket per key (an identity or an address).
type limiters struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*limiterEntry
}

type limiterEntry struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiters(r Rate) *limiters {
	if r.Rate <= 0 {
		return nil
	}
	b := r.Burst
	if b < 1 {
		b = max(1, int(r.Rate))
	}
	return &limiters{limit: rate.Limit(r.Rate), burst: b, m: map[string]*limiterEntry{}}
}

// maxLimiters bounds the buckets kept; past it, idle ones are dropped.
const maxLimiters = 50000

func (l *limiters) get(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxLimiters {
			for k, v := range l.m {
				// A bucket idle long enough to be full again is as good as new.
				if now.Sub(v.seen) > time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second))+time.Minute {
					delete(l.m, k)
				}
			}
			if len(l.m) >= maxLimiters {
				clear(l.m)
			}
		}
		e = &limiterEntry{l: rate.NewLimiter(l.limit, l.burst)}
		l.m[key] = e
	}
	e.seen = now
	return e.l
}

// take spends one token of key's bucket; when none is left it returns
// how long until one is.
func (l *limiters) take(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	now := time.Now()
	r := l.get(key, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// spent reports whether key's bucket is empty, without taking from it.
func (l *limiters) spent(key string) (bool, time.Duration) {
	if l == nil {
		return false, 0
	}
	now := time.Now()
	lim := l.get(key, now)
	if tokens := lim.TokensAt(now); tokens < 1 {
		return true, time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
	}
	return false, 0
}

// uploadSlots counts the upload requests in flight per identity.
type uploadSlots struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func (u *uploadSlots) acquire(key string) bool {
	if u.max <= 0 {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[key] >= u.max {
		return false
	}
	u.n[key]++
	return true
}

func (u *uploadSlots) release(key string) {
	if u.max <= 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[key]--; u.n[key] <= 0 {
		delete(u.n, key)
	}
}
