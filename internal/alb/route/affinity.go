package route

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultCookieName is ingress-nginx's session-cookie-name default.
const DefaultCookieName = "INGRESSCOOKIE"

// Affinity is cookie session affinity (affinity: cookie): the first
// response sets a cookie naming the endpoint that served it (a hash, not
// its address), and later requests carrying it go to that endpoint while
// it is ready and reachable.
type Affinity struct {
	Name string
	// Path is session-cookie-path; "" uses the path of the Ingress rule.
	Path string
	// MaxAge and Expires are session-cookie-max-age and
	// session-cookie-expires in seconds (0: a session cookie).
	MaxAge, Expires int
	// Secure and SameSite are session-cookie-secure and
	// session-cookie-samesite (SameSite=None implies Secure, as browsers
	// require it).
	Secure   bool
	SameSite http.SameSite
}

// Pinned returns the endpoint the request's affinity cookie names, or ""
// when it has none or names no endpoint of be.
func (a *Affinity) Pinned(r *http.Request, be *Backend) string {
	c, err := r.Cookie(a.Name)
	if err != nil || c.Value == "" {
		return ""
	}
	for i, k := range be.keys {
		if k == c.Value {
			return be.Endpoints[i]
		}
	}
	return ""
}

// Cookie returns the Set-Cookie value pinning ep of be for a request to
// routePath, or "" when ep is not an endpoint of be.
func (a *Affinity) Cookie(be *Backend, ep, routePath string) string {
	key := be.Key(ep)
	if key == "" {
		return ""
	}
	p := a.Path
	if p == "" {
		p = routePath
	}
	if p == "" || strings.ContainsAny(p, "^$()[]{}*+?|\\") {
		p = "/"
	}
	c := &http.Cookie{Name: a.Name, Value: key, Path: p, HttpOnly: true, MaxAge: a.MaxAge, Secure: a.Secure, SameSite: a.SameSite}
	if a.Expires > 0 {
		c.Expires = time.Now().Add(time.Duration(a.Expires) * time.Second)
	}
	return c.String()
}

// Key returns the affinity cookie value of endpoint ep, or "".
func (b *Backend) Key(ep string) string {
	for i, e := range b.Endpoints {
		if e == ep && i < len(b.keys) {
			return b.keys[i]
		}
	}
	return ""
}

// endpointKey is the opaque, stable cookie value of an endpoint.
func endpointKey(ep string) string {
	s := sha256.Sum256([]byte("iks-alb/" + ep))
	return hex.EncodeToString(s[:12])
}

// parseAffinity reads affinity and session-cookie-* annotations; nil
// when affinity is not "cookie".
func parseAffinity(ann map[string]string, bad func(k, v, want string)) *Affinity {
	get := func(k string) (string, bool) {
		v, ok := ann[AnnotationPrefix+k]
		return strings.TrimSpace(v), ok
	}
	mode, ok := get("affinity")
	if !ok {
		return nil
	}
	if mode != "cookie" {
		bad("affinity", mode, `the only affinity type is "cookie"`)
		return nil
	}
	a := &Affinity{Name: DefaultCookieName}
	if v, ok := get("session-cookie-name"); ok {
		if v == "" || strings.ContainsAny(v, " \t;,=\"") {
			bad("session-cookie-name", v, "use a cookie name without spaces, ';', ',', '=' or quotes")
		} else {
			a.Name = v
		}
	}
	if v, ok := get("session-cookie-path"); ok {
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "; ") {
			bad("session-cookie-path", v, "use a path starting with /, such as /app")
		} else {
			a.Path = v
		}
	}
	if v, ok := get("session-cookie-secure"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("session-cookie-secure", v, `use "true" or "false"`)
		}
		a.Secure = b
	}
	if v, ok := get("session-cookie-samesite"); ok {
		switch strings.ToLower(v) {
		case "strict":
			a.SameSite = http.SameSiteStrictMode
		case "lax":
			a.SameSite = http.SameSiteLaxMode
		case "none":
			a.SameSite, a.Secure = http.SameSiteNoneMode, true
		default:
			bad("session-cookie-samesite", v, "use Strict, Lax or None")
		}
	}
	for _, k := range []string{"session-cookie-max-age", "session-cookie-expires"} {
		v, ok := get(k)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(v, "s"))
		if err != nil || n <= 0 {
			bad(k, v, "use a positive number of seconds such as 3600")
			continue
		}
		if k == "session-cookie-max-age" {
			a.MaxAge = n
		} else {
			a.Expires = n
		}
	}
	return a
}
