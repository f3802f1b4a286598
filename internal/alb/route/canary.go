package route

import (
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Canary is the canary Ingress attached to a main Ingress's host and
// path (canary: "true"). As in ingress-nginx its rules are tried in
// order: canary-by-header, canary-by-cookie, canary-weight; "never"
// keeps a request off the canary, and a header or cookie with another
// value is ignored.
type Canary struct {
	Ingress string // namespace/name of the canary Ingress
	Backend *Backend
	// Affinity is the canary Ingress's own session affinity, if any.
	Affinity *Affinity
	// Header is canary-by-header; HeaderValue (canary-by-header-value)
	// or HeaderPattern (canary-by-header-pattern) replace "always".
	Header        string
	HeaderValue   string
	HeaderPattern *regexp.Regexp
	Cookie        string // canary-by-cookie
	// Weight of WeightTotal requests go to the canary (canary-weight,
	// canary-weight-total, default 100).
	Weight, WeightTotal int
}

// Take reports whether the request goes to the canary.
func (c *Canary) Take(r *http.Request) bool {
	if c.Header != "" {
		if v := r.Header.Get(c.Header); v != "" {
			switch {
			case c.HeaderValue != "":
				if v == c.HeaderValue {
					return true
				}
			case c.HeaderPattern != nil:
				if c.HeaderPattern.MatchString(v) {
					return true
				}
			case v == "always":
				return true
			case v == "never":
				return false
			}
		}
	}
	if c.Cookie != "" {
		if ck, err := r.Cookie(c.Cookie); err == nil {
			switch ck.Value {
			case "always":
				return true
			case "never":
				return false
			}
		}
	}
	switch {
	case c.Weight <= 0:
		return false
	case c.Weight >= c.WeightTotal:
		return true
	}
	return rand.IntN(c.WeightTotal) < c.Weight //nolint:gosec // traffic split, not security
}

// isCanary reports whether the Ingress is a canary (canary: "true").
func isCanary(ann map[string]string) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(ann[AnnotationPrefix+"canary"]))
	return b
}

// parseCanary reads the canary-* annotations of a canary Ingress.
func parseCanary(ann map[string]string, bad func(k, v, want string)) *Canary {
	c := &Canary{WeightTotal: 100}
	get := func(k string) (string, bool) {
		v, ok := ann[AnnotationPrefix+k]
		return strings.TrimSpace(v), ok
	}
	if v, ok := get("canary-by-header"); ok {
		if v == "" || strings.ContainsAny(v, " \t:") {
			bad("canary-by-header", v, "use a header name such as X-Canary")
		} else {
			c.Header = v
		}
	}
	if v, ok := get("canary-by-header-value"); ok && v != "" {
		c.HeaderValue = v
	}
	if v, ok := get("canary-by-header-pattern"); ok && v != "" && c.HeaderValue == "" {
		re, err := regexp.Compile(v)
		if err != nil {
			bad("canary-by-header-pattern", v, "use a valid regular expression")
		} else {
			c.HeaderPattern = re
		}
	}
	if c.Header == "" && (c.HeaderValue != "" || c.HeaderPattern != nil) {
		bad("canary-by-header-value", c.HeaderValue+patternString(c.HeaderPattern), "it needs canary-by-header to name the header")
	}
	if v, ok := get("canary-by-cookie"); ok {
		if v == "" || strings.ContainsAny(v, " \t;,=\"") {
			bad("canary-by-cookie", v, "use a cookie name without spaces, ';', ',', '=' or quotes")
		} else {
			c.Cookie = v
		}
	}
	if v, ok := get("canary-weight-total"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad("canary-weight-total", v, "use a positive integer such as 100")
		} else {
			c.WeightTotal = n
		}
	}
	if v, ok := get("canary-weight"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > c.WeightTotal {
			bad("canary-weight", v, "use an integer from 0 to "+strconv.Itoa(c.WeightTotal)+" (canary-weight-total)")
		} else {
			c.Weight = n
		}
	}
	return c
}

func patternString(re *regexp.Regexp) string {
	if re == nil {
		return ""
	}
	return re.String()
}
