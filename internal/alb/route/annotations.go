package route

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// AnnotationPrefix is the ingress-nginx annotation prefix IKS uses.
const AnnotationPrefix = "nginx.ingress.kubernetes.io/"

// Global are the ibm-k8s-controller-config settings that set defaults.
type Global struct {
	BodyLimit      int64
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	SendTimeout    time.Duration
	HSTS           bool
	SSLRedirect    bool
	// AccessLog writes one JSON line per request (ibm-k8s-controller-config
	// disable-access-log: "true" turns it off, as in ingress-nginx).
	AccessLog bool
}

// DefaultGlobal is ingress-nginx's defaults.
func DefaultGlobal() Global {
	return Global{BodyLimit: 1 << 20, ConnectTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second,
		SendTimeout: 60 * time.Second, HSTS: true, SSLRedirect: true, AccessLog: true}
}

// unsupported are annotations IKS documents that this ALB does not
// implement yet: they get a Warning rather than silently doing nothing.
var unsupported = map[string]bool{
	"affinity-mode": true, "affinity-canary-behavior": true, "limit-connections": true, "limit-rate": true,
	"limit-rate-after": true, "auth-tls-error-page": true, "auth-tls-match-cn": true,
}

// affinityKeys are the session affinity annotations parseAffinity reads;
// canaryKeys those parseCanary reads (on canary Ingresses only).
var (
	affinityKeys = map[string]bool{"affinity": true, "session-cookie-name": true, "session-cookie-path": true,
		"session-cookie-max-age": true, "session-cookie-expires": true, "session-cookie-secure": true, "session-cookie-samesite": true}
	canaryKeys = map[string]bool{"canary": true, "canary-by-header": true, "canary-by-header-value": true,
		"canary-by-header-pattern": true, "canary-by-cookie": true, "canary-weight": true, "canary-weight-total": true}
	// builderKeys are read by the builder: they need Secrets, Services or
	// state kept across tables.
	builderKeys = map[string]bool{"auth-tls-secret": true, "auth-tls-verify-client": true, "auth-tls-verify-depth": true,
		"auth-tls-pass-certificate-to-upstream": true, "default-backend": true, "ssl-passthrough": true}
)

// ignored are accepted annotations with no effect here: this proxy always
// streams (proxy-buffering) and sends HSTS per global config.
var ignored = map[string]bool{"proxy-buffering": true, "proxy-request-buffering": true}

// parseOptions reads an Ingress's annotations over the global defaults.
// Each problem names the annotation and the fix; a bad value keeps the
// default.
func parseOptions(ann map[string]string, g Global) (*Options, bool, []string) {
	o := &Options{SSLRedirect: g.SSLRedirect, HSTS: g.HSTS, BodyLimit: g.BodyLimit,
		ConnectTimeout: g.ConnectTimeout, ReadTimeout: g.ReadTimeout, SendTimeout: g.SendTimeout}
	var problems []string
	useRegex := false
	bad := func(k, v, want string) {
		problems = append(problems, fmt.Sprintf("annotation %s%s=%q is not valid: %s", AnnotationPrefix, k, v, want))
	}
	for full, v := range ann {
		k, ok := strings.CutPrefix(full, AnnotationPrefix)
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.HasSuffix(k, "-snippet") || k == "snippet":
			problems = append(problems, fmt.Sprintf("annotation %s is refused: snippets inject proxy configuration and are not supported; remove it and use the supported annotations", full))
		case k == "rewrite-target":
			o.RewriteTarget = v
		case k == "use-regex":
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, `use "true" or "false"`)
			}
			useRegex = b
		case k == "ssl-redirect" || k == "force-ssl-redirect" || k == "enable-cors":
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, `use "true" or "false"`)
				continue
			}
			switch k {
			case "ssl-redirect":
				o.SSLRedirect = b
			case "force-ssl-redirect":
				o.ForceSSLRedirect = b
			default:
				o.CORS = b
			}
		case k == "backend-protocol":
			// applied by Build to the backend
			switch strings.ToUpper(v) {
			case ProtoHTTP, ProtoHTTPS, ProtoGRPC, ProtoGRPCS:
			default:
				bad(k, v, "use HTTP, HTTPS, GRPC or GRPCS")
			}
		case k == "proxy-body-size":
			n, err := ParseSize(v)
			if err != nil {
				bad(k, v, `use a size such as 8m, 512k or 0 (no limit)`)
				continue
			}
			o.BodyLimit = n
		case k == "proxy-connect-timeout" || k == "proxy-read-timeout" || k == "proxy-send-timeout":
			d, err := parseSeconds(v)
			if err != nil {
				bad(k, v, "use a number of seconds such as 30 (or 30s)")
				continue
			}
			switch k {
			case "proxy-connect-timeout":
				o.ConnectTimeout = d
			case "proxy-read-timeout":
				o.ReadTimeout = d
			default:
				o.SendTimeout = d
			}
		case k == "limit-rps" || k == "limit-rpm" || k == "limit-burst-multiplier":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				bad(k, v, "use a positive integer")
				continue
			}
			switch k {
			case "limit-rps":
				o.limitRPS = n
			case "limit-rpm":
				o.limitRPM = n
			default:
				o.burstMult = n
			}
		case k == "custom-http-errors":
			c, err := parseCodes(v)
			if err != nil {
				bad(k, v, err.Error()+"; use a comma-separated list such as 404,503")
				continue
			}
			o.CustomErrors = c
		case k == "whitelist-source-range" || k == "allowlist-source-range":
			for _, c := range strings.Split(v, ",") {
				c = strings.TrimSpace(c)
				if c == "" {
					continue
				}
				p, err := parsePrefix(c)
				if err != nil {
					bad(k, v, fmt.Sprintf("%q is not a CIDR; use a comma-separated list such as 10.0.0.0/8,192.168.1.5", c))
					continue
				}
				o.Allow = append(o.Allow, p)
			}
		case k == "app-root":
			if !strings.HasPrefix(v, "/") {
				bad(k, v, "use a path starting with /, such as /app")
				continue
			}
			o.AppRoot = v
		case k == "permanent-redirect" || k == "temporal-redirect":
			if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "/") {
				bad(k, v, "use an absolute URL such as https://example.com/new")
				continue
			}
			o.Redirect, o.RedirectCode = v, 301
			if k == "temporal-redirect" {
				o.RedirectCode = 302
			}
		case k == "permanent-redirect-code" || k == "temporal-redirect-code":
		case canaryKeys[k] && k != "canary" && !isCanary(ann):
			problems = append(problems, fmt.Sprintf("annotation %s has no effect: this Ingress is not a canary (set %scanary: \"true\" on the canary Ingress, which needs the host and path of a main Ingress)", full, AnnotationPrefix))
		case k == "limit-whitelist":
			for _, c := range strings.Split(v, ",") {
				if c = strings.TrimSpace(c); c == "" {
					continue
				}
				p, err := parsePrefix(c)
				if err != nil {
					bad(k, v, fmt.Sprintf("%q is not a CIDR; use a comma-separated list such as 10.0.0.0/8,192.168.1.5", c))
					continue
				}
				o.LimitExempt = append(o.LimitExempt, p)
			}
		case ignored[k], affinityKeys[k], canaryKeys[k], builderKeys[k]:
		case unsupported[k] || strings.HasPrefix(k, "session-cookie-") || strings.HasPrefix(k, "canary-"):
			problems = append(problems, fmt.Sprintf("annotation %s is not supported by the iks ALB yet and has no effect; remove it", full))
		default:
			problems = append(problems, fmt.Sprintf("annotation %s is unknown to the iks ALB and has no effect: check its spelling against the ingress-nginx annotations IKS supports", full))
		}
	}
	o.Affinity = parseAffinity(ann, bad)
	return o, useRegex, problems
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(c string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(c)
	if err != nil {
		a, err2 := netip.ParseAddr(c)
		if err2 != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address: %w", c, err)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return p.Masked(), nil
}

// ParseSize reads nginx sizes: 0, 1024, 8k, 8m, 1g.
func ParseSize(v string) (int64, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "k"):
		mult, v = 1<<10, strings.TrimSuffix(v, "k")
	case strings.HasSuffix(v, "m"):
		mult, v = 1<<20, strings.TrimSuffix(v, "m")
	case strings.HasSuffix(v, "g"):
		mult, v = 1<<30, strings.TrimSuffix(v, "g")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a non-negative number with an optional k, m or g suffix", v)
	}
	return n * mult, nil
}

func parseSeconds(v string) (time.Duration, error) {
	v = strings.TrimSuffix(strings.TrimSpace(v), "s")
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("timeout %q: want a positive number of seconds", v)
	}
	return time.Duration(n) * time.Second, nil
}
