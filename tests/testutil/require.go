package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequirePrivilegedEnv is the environment variable that turns every skip
// of a root- or tool-gated test into a failure (CI sets it: a suite whose
// privileged tests did not run must not pass).
const RequirePrivilegedEnv = "IKS_REQUIRE_PRIVILEGED"

// PrivilegedRequired reports whether IKS_REQUIRE_PRIVILEGED=1.
func PrivilegedRequired() bool { return os.Getenv(RequirePrivilegedEnv) == "1" }

// Unavailable skips the test because something it needs (root, a tool)
// is missing, or fails it when IKS_REQUIRE_PRIVILEGED=1.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if PrivilegedRequired() {
		t.Fatalf("%s (%s=1: a privileged test may not skip; run as root with the tools of .ci/run installed)", msg, RequirePrivilegedEnv)
	}
	t.Skip(msg)
}

// RequireRoot skips privileged tests for non-root users (fails them when
// IKS_REQUIRE_PRIVILEGED=1).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (network namespaces, cgroups, containers)")
	}
}

// RequireTools skips the test when one of the named programs is not in
// PATH (fails it when IKS_REQUIRE_PRIVILEGED=1). pkg names the Debian
// package that provides them.
func RequireTools(t testing.TB, pkg string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			Unavailable(t, "needs %s (Debian package %s)", tool, pkg)
		}
	}
}

// RequireNetns is RequireRoot plus iproute2: what every test that builds
// named network namespaces needs.
func RequireNetns(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	RequireTools(t, "iproute2", "ip", "nsenter")
}
