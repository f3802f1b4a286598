package calicosel

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestMatches(t *testing.T) {
	l := labels.Set{"ibm.role": "worker_public", "app": "web", "tier": "front-end", "projectcalico.org/namespace": "prod"}
	for _, c := range []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"all()", true},
		{"global()", false},
		{"ibm.role=='worker_public'", true},
		{`ibm.role == "worker_private"`, false},
		{"ibm.role != 'worker_private'", true},
		{"missing != 'x'", true},
		{"app in {'web', 'api'}", true},
		{"app in {}", false},
		{"app not in {'web'}", false},
		{"missing not in {'web'}", true},
		{"missing in {'web'}", false},
		{"has(app)", true},
		{"!has(app)", false},
		{"has(missing)", false},
		{"! has(missing)", true},
		{"has(app) && app == 'web'", true},
		{"has(app) && app == 'api'", false},
		{"app == 'api' || tier == 'front-end'", true},
		{"!(app == 'api' || tier == 'back-end')", true},
		{"(app == 'web' || app == 'api') && !has(db)", true},
		{"app == 'api' || app == 'web' && tier == 'x'", false}, // && binds tighter
		{"tier contains 'nt-'", true},
		{"tier starts with 'front'", true},
		{"tier ends with 'end'", true},
		{"tier ends with 'front'", false},
		{"projectcalico.org/namespace == 'prod'", true},
	} {
		s, err := Parse(c.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.sel, err)
			continue
		}
		if got := s.Matches(l); got != c.want {
			t.Errorf("%q (as %q) matches = %v, want %v", c.sel, s.String(), got, c.want)
		}
		// The canonical text parses back to the same selector.
		again, err := Parse(s.String())
		if err != nil || again.String() != s.String() || again.Matches(l) != c.want {
			t.Errorf("%q: canonical %q does not round-trip: %v", c.sel, s.String(), err)
		}
	}
}

func TestGlobal(t *testing.T) {
	if !MustParse("global()").Matches(labels.Set{Global: ""}) {
		t.Error("global() does not match a global set")
	}
}

func TestCanonical(t *testing.T) {
	a, b := MustParse("app in {'b','a'}&&has(x)"), MustParse("  app in { 'a' , 'b' } && has( x )")
	if a.String() != b.String() {
		t.Errorf("equal selectors print differently: %q vs %q", a, b)
	}
	if got, want := MustParse("!(a == 'x' || b == 'y') && c == 'z'").String(), "!(a == 'x' || b == 'y') && c == 'z'"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct{ sel, want string }{
		{"app = 'web'", "unexpected character '='"},
		{"app == web", "expected a quoted value"},
		{"app == 'web", "without its closing quote"},
		{"(app == 'web'", "expected a closing )"},
		{"app == 'web')", "unexpected \")\""},
		{"app", "alone is no expression"},
		{"app in ('a')", "expected { after in"},
		{"app in {'a' 'b'}", "expected , or }"},
		{"has(app", "expected ) after has(app"},
		{"app == 'a' &&", "found the end of the selector"},
		{"app == 'a' & b == 'c'", "the operators are"},
		{"app not 'a'", "expected in after not"},
		{"app == 'a' b == 'c'", "join expressions with && or ||"},
	} {
		_, err := Parse(c.sel)
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *Error", c.sel, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.sel) {
			t.Errorf("Parse(%q) error %q, want it to contain %q and the selector", c.sel, err, c.want)
		}
	}
}
