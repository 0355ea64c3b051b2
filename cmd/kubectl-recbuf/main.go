// Command kubectl-recbuf is the kubectl plugin of recbuf: with it on the
// PATH, `kubectl recbuf stream|latest|take|status|publish RECORD` (tail is
// stream's other name) reads a
// Record from a terminal, through the API server and with the user's
// kubeconfig (see internal/kubectlplugin and the README's "From your
// terminal"). Install it with
//
//	go install github.com/recbuf/recbuf/cmd/kubectl-recbuf@latest
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/recbuf/recbuf/internal/kubectlplugin"
)

func main() { os.Exit(run()) }

// run is apart from main so that its deferred calls run before os.Exit.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return kubectlplugin.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}
