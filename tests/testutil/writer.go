package testutil

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Writer creates ConfigMaps in namespace default one after another
// through whichever apiserver answers (moving to the next on any error),
// recording each acknowledged write: what a client of an HA control plane
// lives through when a server dies.
type Writer struct {
	prefix string
	mu     sync.Mutex
	acked  []string
	times  []time.Time
	errs   []string // the latest failures, for failure messages
	done   chan struct{}
	wg     sync.WaitGroup
}

// WriterLabel labels every ConfigMap a Writer creates.
const WriterLabel = "ha-writer"

// StartWriter starts writing ConfigMaps named prefix-NNNNN through
// clients, in order.
func StartWriter(prefix string, clients []kubernetes.Interface, names []string) *Writer {
	w := &Writer{prefix: prefix, done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		cur := 0
		for i := 0; ; i++ {
			name := fmt.Sprintf("%s-%05d", prefix, i)
			for {
				select {
				case <-w.done:
					return
				default:
				}
				_, err := clients[cur].CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{WriterLabel: prefix}}}, metav1.CreateOptions{})
				// AlreadyExists: an earlier attempt that timed out landed.
				if err == nil || strings.Contains(err.Error(), "already exists") {
					w.mu.Lock()
					w.acked, w.times = append(w.acked, name), append(w.times, time.Now())
					w.mu.Unlock()
					break
				}
				w.mu.Lock()
				w.errs = append(w.errs, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), names[cur], err))
				if len(w.errs) > 12 {
					w.errs = w.errs[1:]
				}
				w.mu.Unlock()
				cur = (cur + 1) % len(clients)
			}
		}
	}()
	return w
}

// Count is the number of acknowledged writes so far.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// Failures are the latest failed attempts, one per line.
func (w *Writer) Failures() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.errs, "\n")
}

// WaitAcksAfter waits for n writes acknowledged after since and returns
// the time of the first of them.
func (w *Writer) WaitAcksAfter(t testing.TB, since time.Time, n int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		c, first := 0, time.Time{}
		for _, at := range w.times {
			if at.After(since) {
				if c == 0 {
					first = at
				}
				c++
			}
		}
		w.mu.Unlock()
		if c >= n {
			return first
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Fatalf("fewer than %d writes acknowledged within %s; the latest failures:\n%s", n, timeout, strings.Join(w.errs, "\n"))
	return time.Time{}
}

// Stop ends the writer and returns the acknowledged names and the longest
// gap between two acknowledgements.
func (w *Writer) Stop() ([]string, time.Duration) {
	close(w.done)
	w.wg.Wait()
	var gap time.Duration
	for i := 1; i < len(w.times); i++ {
		gap = max(gap, w.times[i].Sub(w.times[i-1]))
	}
	return w.acked, gap
}
