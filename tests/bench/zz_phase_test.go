package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

func TestZZPhases(t *testing.T) {
	if os.Getenv("IKS_PHASES") == "" {
		t.Skip()
	}
	n := testutil.NewNode(t, "phz", "10.88.0.1")
	n.Start()
	n.WaitReady(3 * time.Minute)
	n.Stop(30 * time.Second)
	n.Start()
	n.WaitReady(3 * time.Minute)
	for _, l := range strings.Split(n.Log(), "\n") {
		if strings.Contains(l, "msg=") && (strings.Contains(l, "ready") || strings.Contains(l, "Ready") || strings.Contains(l, "started") || strings.Contains(l, "phase") || strings.Contains(l, "=====")) || strings.Contains(l, "=====") || strings.Contains(l, " in ") {
			fmt.Println(l)
		}
	}
}
