package etcd

import (
	"errors"
	"testing"
)

func TestRetryableAdd(t *testing.T) {
	for msg, retry := range map[string]bool{
		"etcdserver: unhealthy cluster":                                         true,
		"etcdserver: too many learner members in cluster":                       true,
		"etcdserver: re-configuration failed due to not enough started members": true,
		"etcdserver: request timed out":                                         true,
		"etcdserver: permission denied":                                         false,
		"etcdserver: Peer URLs already exists":                                  false,
	} {
		if got := retryableAdd(errors.New(msg)) != ""; got != retry {
			t.Errorf("retryableAdd(%q) = %v, want %v", msg, got, retry)
		}
	}
}
