// Package version carries the iks version, stamped at link time by the Makefile.
package version

// Version is set with -ldflags "-X github.com/iks-dev/iks/internal/version.Version=...".
var Version = "v0.0.0-dev"

// Kubernetes is the upstream Kubernetes release iks embeds.
const Kubernetes = "v1.36.3"
