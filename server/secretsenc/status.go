package secretsenc

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// secretsPrefix is where the apiserver keeps Secrets in etcd.
const secretsPrefix = "/registry/secrets/"

// Status is how the Secrets in etcd are stored.
type Status struct {
	// ActiveKey encrypts new writes; Keys lists every configured key.
	ActiveKey string
	Keys      []string
	// ByKey counts Secrets per encryption key name (configured or not).
	ByKey map[string]int
	// Plaintext counts Secrets stored unencrypted (written before
	// encryption was on); Other counts other schemes.
	Plaintext, Other int
}

// Total is the number of Secrets.
func (s *Status) Total() int {
	n := s.Plaintext + s.Other
	for _, c := range s.ByKey {
		n += c
	}
	return n
}

// Current reports whether every Secret is encrypted with the active key.
func (s *Status) Current() bool { return s.Total() == s.ByKey[s.ActiveKey] }

// ReadStatus reads every Secret's raw value from etcd.
func ReadStatus(ctx context.Context, kv clientv3.KV, c *Config) (*Status, error) {
	st := &Status{ActiveKey: c.Keys[0].Name, ByKey: map[string]int{}}
	for _, k := range c.Keys {
		st.Keys = append(st.Keys, k.Name)
	}
	key := secretsPrefix
	end := clientv3.GetPrefixRangeEnd(secretsPrefix)
	for {
		resp, err := kv.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(500))
		if err != nil {
			return nil, fmt.Errorf("read Secrets from etcd: %w", err)
		}
		for _, e := range resp.Kvs {
			st.count(e.Value)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return st, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func (s *Status) count(v []byte) {
	p := []byte("k8s:enc:" + Provider + ":v1:")
	switch {
	case bytes.HasPrefix(v, p):
		rest := v[len(p):]
		if i := bytes.IndexByte(rest, ':'); i > 0 {
			s.ByKey[string(rest[:i])]++
			return
		}
		s.Other++
	case bytes.HasPrefix(v, []byte("k8s:enc:")):
		s.Other++
	default:
		s.Plaintext++
	}
}

// String renders the status for `iks secrets-encrypt status`.
func (s *Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Encryption at rest: enabled (%s)\n", Provider)
	fmt.Fprintf(&b, "Active key: %s\n", s.ActiveKey)
	fmt.Fprintf(&b, "Configured keys: %s\n", strings.Join(s.Keys, ", "))
	fmt.Fprintf(&b, "Secrets: %d\n", s.Total())
	names := make([]string, 0, len(s.ByKey))
	for n := range s.ByKey {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  encrypted with %s: %d\n", n, s.ByKey[n])
	}
	if s.Plaintext > 0 {
		fmt.Fprintf(&b, "  unencrypted: %d\n", s.Plaintext)
	}
	if s.Other > 0 {
		fmt.Fprintf(&b, "  other encryption: %d\n", s.Other)
	}
	if s.Current() {
		b.WriteString("Status: every Secret is encrypted with the active key\n")
	} else {
		b.WriteString("Status: some Secrets are not encrypted with the active key: run `iks secrets-encrypt rotate-keys`\n")
	}
	return b.String()
}
