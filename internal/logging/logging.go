// Package logging sets up log/slog for iks and routes the logs of the
// embedded Kubernetes components (klog) into the same handler, once.
//
// iks's own lines (start-up phases, errors) are always printed at Info.
// Kubernetes components are noisy: without --debug only their errors are
// shown; with --debug everything down to klog verbosity 2.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/go-logr/logr"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
)

// FormatName is the klog logging format iks registers with component-base;
// every embedded component is configured with it.
const FormatName = "iks"

// Options configure logging.
type Options struct {
	Debug bool
	Out   io.Writer // default os.Stderr
}

var (
	setupOnce sync.Once
	root      *slog.Logger
	kubeLevel = new(slog.LevelVar)
	verbosity uint32
)

// Setup configures the process-wide logger and returns it. It is safe to
// call more than once; only the first call takes effect.
func Setup(opts Options) *slog.Logger {
	setupOnce.Do(func() { setup(opts) })
	return root
}

func setup(opts Options) {
	out := opts.Out
	if out == nil {
		out = os.Stderr
	}
	level := slog.LevelInfo
	kubeLevel.Set(slog.LevelWarn)
	if opts.Debug {
		level = slog.LevelDebug
		kubeLevel.Set(slog.Level(-2))
		verbosity = 2
	}
	h := slog.NewTextHandler(out, &slog.HandlerOptions{Level: minLevel(level, kubeLevel.Level()), ReplaceAttr: shortTime})
	root = slog.New(&levelFilter{Handler: h, min: level})
	kubeHandler := &levelFilter{Handler: h.WithAttrs([]slog.Attr{slog.String("component", "kube")}), min: kubeLevel}
	_ = logsapi.RegisterLogFormat(FormatName, factory{handler: kubeHandler}, logsapi.LoggingBetaOptions)
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	if err := logsapi.ValidateAndApply(KubeConfig(), utilfeature.DefaultFeatureGate); err != nil {
		root.Warn("could not route Kubernetes logs through iks logging", "err", err)
	}
	// component-base points slog's default at klog; iks's own default stays ours.
	slog.SetDefault(root)
}

// Logger returns the process logger (Setup must have been called; before
// that it returns slog.Default()).
func Logger() *slog.Logger {
	if root == nil {
		return slog.Default()
	}
	return root
}

// KubeConfig returns the logging configuration every embedded component
// must use: identical values, so component-base accepts the re-apply.
func KubeConfig() *logsapi.LoggingConfiguration {
	c := logsapi.NewLoggingConfiguration()
	c.Format = FormatName
	c.Verbosity = logsapi.VerbosityLevel(verbosity)
	return c
}

// Verbosity is the klog verbosity in use.
func Verbosity() int { return int(verbosity) }

// FeatureGate is the gate passed to component-base when applying logging.
func FeatureGate() featuregate.FeatureGate { return utilfeature.DefaultFeatureGate }

type factory struct{ handler slog.Handler }

func (f factory) Create(logsapi.LoggingConfiguration, logsapi.LoggingOptions) (logr.Logger, logsapi.RuntimeControl) {
	return logr.FromSlogHandler(f.handler), logsapi.RuntimeControl{}
}

// levelFilter drops records below a (possibly dynamic) level.
type levelFilter struct {
	slog.Handler
	min slog.Leveler
}

func (l *levelFilter) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min.Level() && l.Handler.Enabled(ctx, lv)
}

func (l *levelFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelFilter{Handler: l.Handler.WithAttrs(as), min: l.min}
}

func (l *levelFilter) WithGroup(name string) slog.Handler {
	return &levelFilter{Handler: l.Handler.WithGroup(name), min: l.min}
}

func minLevel(a, b slog.Level) slog.Level {
	if a < b {
		return a
	}
	return b
}

func shortTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
	}
	return a
}
