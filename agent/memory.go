package agent

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/iks-dev/iks/embedded"
)

// memoryTrim is the agent's last component: once everything else is up it
// gives back what start-up needed only once, so the node's idle memory is
// what it runs on, not what it started with. It drops the pages of the
// carried assets (read for staging and the image imports, ~45 MB of the
// binary) from the process and returns the heap that start-up garbage
// left free to the kernel. In the background: a forced GC of the server's
// heap must not delay the node's Ready line.
type memoryTrim struct {
	log *slog.Logger
}

func (m *memoryTrim) Name() string                { return "memory" }
func (m *memoryTrim) Init(context.Context) error  { return nil }
func (m *memoryTrim) Stop(context.Context) error  { return nil }
func (m *memoryTrim) Start(context.Context) error { go m.trim(); return nil }

func (m *memoryTrim) trim() {
	released := embedded.Release()
	debug.FreeOSMemory()
	m.log.Debug("start-up memory returned", "component", "memory", "asset_bytes", released)
}
