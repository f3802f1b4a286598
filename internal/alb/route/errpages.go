package route

import (
	"fmt"
	"strconv"
	"strings"
)

// CodeSet is a set of HTTP status codes 100-599 (custom-http-errors).
type CodeSet [10]uint64

// Has reports whether code is in the set.
func (c *CodeSet) Has(code int) bool {
	if code < 0 || code >= 640 {
		return false
	}
	return c[code>>6]&(1<<(code&63)) != 0
}

func (c *CodeSet) add(code int) { c[code>>6] |= 1 << (code & 63) }

// parseCodes reads a comma-separated list of status codes 400-599.
func parseCodes(v string) (*CodeSet, error) {
	var c CodeSet
	n := 0
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		code, err := strconv.Atoi(f)
		if err != nil || code < 400 || code > 599 {
			return nil, fmt.Errorf("%q is not an error status code 400-599", f)
		}
		c.add(code)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no status code")
	}
	return &c, nil
}
