package bgppeer

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

func TestParseSelector(t *testing.T) {
	node := labels.Set{"rack": "a", "zone": "z1", "edge": ""}
	for sel, want := range map[string]bool{
		"":                                  true,
		"all()":                             true,
		"rack == 'a'":                       true,
		`rack == "b"`:                       false,
		"rack != 'b' && has(edge)":          true,
		"!has(edge)":                        false,
		"zone in {'z1', 'z2'}":              true,
		"zone not in {'z1'}":                false,
		"rack == 'a' && zone in {'z9'}":     false,
		"has(rack) && rack == 'a' && all()": true,
		"rack == 'a' && all()":              true,
	} {
		s, err := ParseSelector(sel)
		if err != nil {
			t.Errorf("%q: %v", sel, err)
			continue
		}
		if got := s.Matches(node); got != want {
			t.Errorf("%q matches %v = %v, want %v", sel, node, got, want)
		}
	}
	for _, bad := range []string{"rack == a", "rack = 'a'", "rack == 'a' || zone == 'b'", "zone in ('a')", "has(bad key!)", "(rack == 'a')"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFromUnstructured(t *testing.T) {
	obj := func(spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "tor"}, "spec": spec}}
	}
	p, err := FromUnstructured(obj(map[string]any{"peerIP": "10.0.0.1", "asNumber": int64(64600), "nodeSelector": "rack == 'a'"}))
	if err != nil || !p.Selects("n1", map[string]string{"rack": "a"}) || p.Selects("n1", map[string]string{"rack": "b"}) {
		t.Fatalf("selector peer: %+v %v", p, err)
	}
	p, err = FromUnstructured(obj(map[string]any{"peerIP": "10.0.0.1", "asNumber": int64(64600), "node": "n2"}))
	if err != nil || !p.Selects("n2", nil) || p.Selects("n1", nil) {
		t.Fatalf("node peer: %+v %v", p, err)
	}
	for _, spec := range []map[string]any{
		{"peerIP": "10.0.0", "asNumber": int64(1)},
		{"peerIP": "10.0.0.1", "asNumber": int64(0)},
		{"peerIP": "10.0.0.1", "asNumber": int64(1), "nodeSelector": "rack = a"},
		{"peerIP": "10.0.0.1", "asNumber": int64(1), "node": "x", "nodeSelector": "all()"},
	} {
		if _, err := FromUnstructured(obj(spec)); err == nil {
			t.Errorf("%v accepted", spec)
		}
	}
}
