package kubetest

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"go.uber.org/goleak"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Setup prepares a test package once its API server runs: it returns
// what undoes it, run after the tests (nil: nothing to undo).
type Setup func(env *envtest.Environment, cfg *rest.Config) (teardown func() error, err error)

// Main is a test package's TestMain against one API server, written once:
// it starts env (Environment's when nil), calls setup, runs the tests,
// runs setup's teardown, stops env and, when all passed, looks for leaked
// goroutines. It returns the exit code, non-zero when anything failed,
// and says why on stderr: a TestMain has no test to fail.
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m, nil, setup)) }
func Main(m *testing.M, env *envtest.Environment, setup Setup) int {
	if env == nil {
		var err error
		if env, err = Environment(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := run(m, env, setup)
	if code == 0 {
		if err := goleak.Find(LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

func run(m *testing.M, env *envtest.Environment, setup Setup) int {
	cfg, stop, err := Start(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	teardown := func() error { return nil }
	if setup != nil {
		undo, err := setup(env, cfg)
		if undo != nil {
			teardown = undo
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "setting up the tests:", err)
			if err := teardown(); err != nil {
				fmt.Fprintln(os.Stderr, "tearing down:", err)
			}
			return 1
		}
	}
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "tearing down:", err)
		code = 1
	}
	return code
}

// LeakOptions ignore the goroutines client-go starts once per process and
// never stops, and idle HTTP connections, for goleak.Find in a TestMain.
func LeakOptions(more ...goleak.Option) []goleak.Option {
	return slices.Concat([]goleak.Option{
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*Type).updateUnfinishedWorkLoop"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*delayingType).waitingLoop"),
		goleak.IgnoreAnyFunction("k8s.io/apimachinery/pkg/watch.(*Broadcaster).loop"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/tools/events.(*eventBroadcasterImpl).StartRecordingToSink.func1"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	}, more)
}
