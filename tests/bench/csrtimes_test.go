package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// csrTimes watches the CSRs from now on and records, for each, when the
// test saw it created, approved and issued: the join's round trips to the
// server as the server sees them. The returned func stops the watch and
// formats the times relative to t0.
func csrTimes(cs kubernetes.Interface) (report func(t0 time.Time) string, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := cs.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, err
	}
	type times struct {
		signer                    string
		created, approved, issued time.Time
	}
	var mu sync.Mutex
	seen := map[string]*times{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			csr, ok := ev.Object.(*certv1.CertificateSigningRequest)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			now := time.Now()
			mu.Lock()
			ts := seen[csr.Name]
			if ts == nil {
				ts = &times{signer: csr.Spec.SignerName, created: now}
				seen[csr.Name] = ts
			}
			for _, c := range csr.Status.Conditions {
				if c.Type == certv1.CertificateApproved && ts.approved.IsZero() {
					ts.approved = now
				}
			}
			if len(csr.Status.Certificate) > 0 && ts.issued.IsZero() {
				ts.issued = now
			}
			mu.Unlock()
		}
	}()
	return func(t0 time.Time) string {
		cancel()
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		rel := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return fmt.Sprintf("%.2fs", t.Sub(t0).Seconds())
		}
		var lines []string
		for _, ts := range seen {
			lines = append(lines, fmt.Sprintf("    %-45s created %s approved %s issued %s", ts.signer, rel(ts.created), rel(ts.approved), rel(ts.issued)))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n") + "\n"
	}, nil
}
