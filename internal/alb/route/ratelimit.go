package route

import (
	"net/netip"
	"sync"
	"time"
)

// DefaultBurstMultiplier is ingress-nginx's limit-burst-multiplier.
const DefaultBurstMultiplier = 5

// Limiter limits the request rate of each client address with a token
// bucket, as nginx's limit_req with burst and nodelay: a new client may
// send burst+1 requests at once, then rate per second; requests over that
// are refused (503). The buckets are sharded by address, so clients
// rarely contend for a lock.
type Limiter struct {
	// Rate is tokens per second; Burst is the excess allowed.
	Rate, Burst float64
	shards      [limiterShards]limShard
}

const (
	limiterShards = 64
	// maxPerShard bounds the memory of one shard: beyond it, buckets that
	// are full again (idle clients) are dropped, and if none is, all are.
	maxPerShard = 4096
)

type limShard struct {
	mu sync.Mutex
	m  map[netip.Addr]bucket
	_  [48]byte // mutex 8 + map 8 + 48: one 64-byte cache line per shard
}

type bucket struct {
	tokens float64
	last   time.Duration
}

// NewLimiter returns a limiter of rate requests per second with burst
// excess requests.
func NewLimiter(rate, burst float64) *Limiter { return &Limiter{Rate: rate, Burst: burst} }

var epoch = time.Now()

// Now is the monotonic clock Allow expects.
func Now() time.Duration { return time.Since(epoch) }

// Allow takes one request of client a at time now (see Now) and reports
// whether it is within the limit.
func (l *Limiter) Allow(a netip.Addr, now time.Duration) bool {
	b16 := a.As16()
	h := uint32(2166136261)
	for _, c := range b16 {
		h = (h ^ uint32(c)) * 16777619
	}
	s := &l.shards[h%limiterShards]
	capacity := l.Burst + 1
	s.mu.Lock()
	if s.m == nil {
		s.m = map[netip.Addr]bucket{}
	}
	b, ok := s.m[a]
	if ok {
		b.tokens = min(capacity, b.tokens+(now-b.last).Seconds()*l.Rate)
	} else {
		if len(s.m) >= maxPerShard {
			l.sweep(s, now)
		}
		b.tokens = capacity
	}
	b.last = now
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	s.m[a] = b
	s.mu.Unlock()
	return allowed
}

func (l *Limiter) sweep(s *limShard, now time.Duration) {
	for a, b := range s.m {
		if b.tokens+(now-b.last).Seconds()*l.Rate >= l.Burst+1 {
			delete(s.m, a)
		}
	}
	if len(s.m) >= maxPerShard {
		clear(s.m)
	}
}

// Limiters keeps limiters across table rebuilds, so that a change to any
// Ingress does not reset every client's budget.
type Limiters struct {
	mu sync.Mutex
	m  map[string]*Limiter
}

// get returns the limiter of key with these settings, new if they changed.
func (ls *Limiters) get(key string, rate, burst float64) *Limiter {
	if ls == nil {
		return NewLimiter(rate, burst)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*Limiter{}
	}
	if l, ok := ls.m[key]; ok && l.Rate == rate && l.Burst == burst {
		return l
	}
	l := NewLimiter(rate, burst)
	ls.m[key] = l
	return l
}

// keep drops the limiters whose key is not in used.
func (ls *Limiters) keep(used map[string]bool) {
	if ls == nil {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for k := range ls.m {
		if !used[k] {
			delete(ls.m, k)
		}
	}
}
