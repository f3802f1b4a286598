package main

import (
	"net/netip"
	"testing"
)

func TestAnchorOf(t *testing.T) {
	for in, want := range map[string]string{"172.21.0.0/16": "172.21.255.255", "10.10.10.0/24": "10.10.10.255",
		"192.168.50.7/32": "192.168.50.7", "10.0.0.0/31": "10.0.0.1"} {
		if got := anchorOf(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("anchorOf(%s) = %s, want %s", in, got, want)
		}
	}
}
