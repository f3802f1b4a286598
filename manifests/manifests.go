// Package manifests holds the add-ons `iks server` deploys into every
// cluster (CoreDNS today), compiled into the binary with go:embed.
//
// Each NAME.yaml is a text/template of one or more YAML documents,
// rendered with Values; NAME is what `iks server --disable NAME` takes.
// The server applies them with server-side apply (server/deploy).
package manifests

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"
)

//go:embed *.yaml
var files embed.FS

// Values are the cluster settings the templates use.
type Values struct {
	// ClusterDNS is the kube-dns Service ClusterIP (.10 of the service range).
	ClusterDNS string
	// ClusterDomain is the cluster DNS domain, e.g. cluster.local.
	ClusterDomain string
	// APIServerHost and APIServerPort reach the apiserver without a
	// Service (the server's advertise address and port).
	APIServerHost string
	APIServerPort string
	// CoreDNSImage is the embedded CoreDNS image, e.g. iks.local/coredns:1.15.0.
	CoreDNSImage string
	// ClusterCIDR is the pod network, e.g. 172.30.0.0/16 (IKS's default
	// policy allow-node-port-dnat admits forwarded traffic to it).
	ClusterCIDR string
}

// Names lists the embedded manifests, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		// The embedded root always reads.
		panic(err)
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Known reports whether name is an embedded manifest.
func Known(name string) bool {
	for _, n := range Names() {
		if n == name {
			return true
		}
	}
	return false
}

// Render executes the named manifest's template with v. A value the
// template needs but v lacks is an error, not an empty string.
func Render(name string, v Values) ([]byte, error) {
	if !Known(name) {
		return nil, fmt.Errorf("no manifest %q: the manifests are %s", name, strings.Join(Names(), ", "))
	}
	src, err := files.ReadFile(path.Clean(name + ".yaml"))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"required": func(what, s string) (string, error) {
			if s == "" {
				return "", fmt.Errorf("manifest %s needs %s", name, what)
			}
			return s, nil
		},
	}).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render manifest %s: %w", name, err)
	}
	return buf.Bytes(), nil
}
