package containerd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// Containerd supervises the containerd child process.
type Containerd struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	stopping bool
	exited   chan struct{} // closed when the supervisor loop ends
	stop     chan struct{}

	// Embedded supplies the image archives the binary carries; the
	// first is the pause image, imported before Ready returns, the others
	// (and side-loaded archives) beside the kubelet's start: WaitImages.
	Embedded EmbeddedImages

	images     chan struct{} // closed when the background import ended
	imagesErr  error
	stopImport context.CancelFunc
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Containerd {
	return &Containerd{cfg: cfg, log: log.With("component", "containerd")}
}

// Name implements component.Component.
func (c *Containerd) Name() string { return "containerd" }

// Init writes the configuration.
func (c *Containerd) Init(context.Context) error { return c.cfg.WriteConfig() }

func (c *Containerd) pidFile() string { return filepath.Join(c.cfg.State, "containerd.pid") }

// Start launches containerd and keeps it running, restarting it with
// backoff if it dies.
func (c *Containerd) Start(ctx context.Context) error {
	c.killStale()
	c.stop = make(chan struct{})
	c.exited = make(chan struct{})
	started := make(chan error, 1)
	go c.supervise(started)
	return <-started
}

// supervise runs on one locked OS thread for the whole life of the
// children: Pdeathsig fires when the thread that forked exits, and this
// thread never exits before the process does.
func (c *Containerd) supervise(started chan<- error) {
	runtime.LockOSThread()
	defer close(c.exited)
	backoff := time.Second
	first := true
	for {
		cmd, err := c.spawn()
		if first {
			started <- err
			first = false
			if err != nil {
				return
			}
		} else if err != nil {
			c.log.Error("restart containerd failed", "err", err)
		}
		t0 := time.Now()
		if cmd != nil {
			err = cmd.Wait()
		}
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(t0) > time.Minute {
			backoff = time.Second
		}
		c.log.Error("containerd exited; restarting", "err", err, "in", backoff.String())
		select {
		case <-c.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (c *Containerd) spawn() (*exec.Cmd, error) {
	cmd := exec.Command(c.cfg.Exe, "--config", c.cfg.ConfigPath())
	cmd.Env = append(os.Environ(), "PATH="+c.cfg.BinDir+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd (%s): %w", c.cfg.Exe, err)
	}
	go c.forward(out)
	if err := os.WriteFile(c.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		c.log.Warn("write pid file", "err", err)
	}
	c.mu.Lock()
	c.cmd = cmd
	c.mu.Unlock()
	return cmd, nil
}

// forward turns containerd's log lines into slog records.
func (c *Containerd) forward(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		level := slog.LevelInfo
		switch {
		case strings.Contains(line, "level=error"), strings.Contains(line, "level=fatal"):
			level = slog.LevelError
		case strings.Contains(line, "level=warn"):
			level = slog.LevelWarn
		case strings.Contains(line, "level=debug"), strings.Contains(line, "level=trace"):
			level = slog.LevelDebug
		}
		c.log.Log(context.Background(), level, line)
	}
}

// killStale kills a containerd left by a previous iks that died without
// taking its child along (identified by pid file and command line).
func (c *Containerd) killStale() {
	data, err := os.ReadFile(c.pidFile())
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), c.cfg.ConfigPath()) {
		return
	}
	c.log.Warn("killing containerd left over from a previous run", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Ready waits until the containerd API answers, then imports images.
func (c *Containerd) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		cl, err := client.New(c.cfg.Socket, client.WithTimeout(2*time.Second))
		if err == nil {
			_, verr := cl.Version(ctx)
			if verr == nil {
				defer cl.Close()
				if err := c.importImages(ctx, cl, 0, 1, false); err != nil {
					return err
				}
				c.importRest()
				return nil
			}
			cl.Close()
			err = verr
		}
		select {
		case <-c.exited:
			return errors.New("containerd supervisor ended")
		case <-ctx.Done():
			return fmt.Errorf("containerd API at %s not answering (%v): %w", c.cfg.Socket, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// importRest imports the other images in the background: the kubelet
// needs only the pause image to start pods' sandboxes.
func (c *Containerd) importRest() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	done := make(chan struct{})
	c.mu.Lock()
	c.images, c.stopImport = done, cancel
	c.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		cl, err := client.New(c.cfg.Socket, client.WithTimeout(2*time.Second))
		if err == nil {
			err = c.importImages(ctx, cl, 1, -1, true)
			cl.Close()
		}
		if err != nil {
			c.log.Error("cannot import the carried images", "err", err)
		}
		c.imagesErr = err
	}()
}

// WaitImages waits for the background import Ready started.
func (c *Containerd) WaitImages(ctx context.Context) error {
	c.mu.Lock()
	done := c.images
	c.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return c.imagesErr
	case <-ctx.Done():
		return fmt.Errorf("waiting for the image import: %w", context.Cause(ctx))
	}
}

// Stop terminates containerd (SIGTERM, then SIGKILL after 10 s). Shims
// and the containers they run are left running, so pods survive a
// restart of iks.
func (c *Containerd) Stop(ctx context.Context) error {
	c.mu.Lock()
	stopImport, images := c.stopImport, c.images
	c.mu.Unlock()
	if stopImport != nil {
		stopImport()
		<-images
	}
	c.mu.Lock()
	if c.stopping || c.cmd == nil {
		c.mu.Unlock()
		return nil
	}
	c.stopping = true
	cmd := c.cmd
	c.mu.Unlock()
	close(c.stop)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-c.exited
	case <-ctx.Done():
		_ = cmd.Process.Kill()
	}
	_ = os.Remove(c.pidFile())
	return nil
}
