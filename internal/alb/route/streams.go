package route

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// streams reads tcp-services / udp-services entries "PORT": "ns/svc:port".
func (b *builder) streams(proto, cm string, data map[string]string) {
	ports := make([]string, 0, len(data))
	for k := range data {
		ports = append(ports, k)
	}
	slices.Sort(ports)
	for _, k := range ports {
		v := strings.TrimSpace(data[k])
		warn := func(format string, args ...any) {
			b.problems = append(b.problems, Problem{Kind: "ConfigMap", Namespace: "kube-system", Name: cm, Reason: "BadStream",
				Message: fmt.Sprintf("%s entry %q: %q: ", cm, k, v) + fmt.Sprintf(format, args...)})
		}
		port, err := strconv.Atoi(strings.TrimSpace(k))
		if err != nil || port < 1 || port > 65535 {
			warn("the key must be a port number 1-65535")
			continue
		}
		if proto == "tcp" && slices.Contains(b.in.ReservedPorts, port) {
			warn("port %d is the ALB's own HTTP/HTTPS port: use another port", port)
			continue
		}
		// Optional ":PROXY" suffixes of ingress-nginx are not supported.
		parts := strings.Split(v, ":")
		nsName := strings.Split(parts[0], "/")
		if len(parts) < 2 || len(nsName) != 2 || nsName[0] == "" || nsName[1] == "" || parts[1] == "" {
			warn("the value must be NAMESPACE/SERVICE:PORT, for example default/db:5432")
			continue
		}
		if len(parts) > 2 {
			warn("the PROXY protocol options are not supported: drop %q", strings.Join(parts[2:], ":"))
			continue
		}
		be := b.serviceBackend(nsName[0], nsName[1], parts[1], strings.ToUpper(proto), func(msg string) { warn("%s", msg) })
		b.t.Streams = append(b.t.Streams, Stream{Proto: proto, Port: port, Backend: be})
	}
}
