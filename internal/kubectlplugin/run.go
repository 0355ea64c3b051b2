package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/recbuf/recbuf/internal/valueout"
	"github.com/recbuf/recbuf/pkg/client"
)

const usage = `kubectl recbuf reads recbuf Records from your terminal, through the API server.

Usage:
  kubectl recbuf stream RECORD [--from next|oldest|last=N] [-o json|text] [--count N]
  kubectl recbuf latest RECORD [-o json|text]
  kubectl recbuf take RECORD [--timeout 5s] [-o json|text]
  kubectl recbuf status RECORD [--rate-window 10s]
  kubectl recbuf publish RECORD DATA [--subject S] [--header K=V]

tail is another name for stream. Every command takes -n/--namespace, --context
and --kubeconfig, as kubectl does.
Run "kubectl recbuf COMMAND --help" for a command's flags.
`

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

// Run runs the command line args (without the program name) and returns
// the exit status. Values go to stdout, errors and remarks to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		_, _ = fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmds := map[string]func(context.Context, *invocation) error{
		"stream":  stream,
		"latest":  latest,
		"take":    take,
		"status":  status,
		"publish": publish,
	}
	// Messages name the command as typed; the invocation has its one name.
	name := args[0]
	cmd, ok := cmds[canonical(name)]
	if !ok {
		_, _ = fmt.Fprintf(stderr, "kubectl recbuf: unknown command %q\n\n%s", name, usage)
		return exitUsage
	}
	inv := &invocation{name: canonical(name), stdout: stdout, stderr: stderr, start: time.Now()}
	err := inv.parse(args[1:])
	if err == nil {
		err = cmd(ctx, inv)
	}
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		_, _ = fmt.Fprintf(stderr, "kubectl recbuf %s: %v\n", name, err)
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// Ctrl-C ends a stream: not a failure.
		return exitOK
	default:
		_, _ = fmt.Fprintf(stderr, "kubectl recbuf %s: %v\n", name, err)
		return exitError
	}
}

// aliases are other names of commands: tail was stream's name until
// recbufctl and this plugin took the same verb, and stays for the hands
// and scripts that type it.
var aliases = map[string]string{"tail": "stream"}

// canonical is the command that name names.
func canonical(name string) string {
	if c, ok := aliases[name]; ok {
		return c
	}
	return name
}

// invocation is one parsed command line.
type invocation struct {
	name           string
	stdout, stderr io.Writer
	start          time.Time

	kube   kubeFlags
	record string
	args   []string // positional arguments after RECORD

	from       client.Start
	output     valueout.Format
	count      uint64
	timeout    time.Duration
	rateWindow time.Duration
	subject    string
	headers    []string
	tokenFile  string
	// serviceAccount, when set, is the ServiceAccount of the Record's
	// namespace whose tokens the plugin requests (TokenRequest) with the
	// Record's audience.
	serviceAccount string
}

// positional is how many arguments each command takes, RECORD included.
var positional = map[string]int{"stream": 1, "latest": 1, "take": 1, "status": 1, "publish": 2}

func (inv *invocation) parse(args []string) error {
	fs := pflag.NewFlagSet("kubectl recbuf "+inv.name, pflag.ContinueOnError)
	fs.SetOutput(inv.stderr)
	fs.StringVarP(&inv.kube.namespace, "namespace", "n", "", "the Record's namespace (default: the kubeconfig context's)")
	fs.StringVar(&inv.kube.context, "context", "", "the kubeconfig context to use")
	fs.StringVar(&inv.kube.kubeconfig, "kubeconfig", "", "the kubeconfig file to use (default: $KUBECONFIG, else ~/.kube/config)")
	var fromFlag, output string
	switch inv.name {
	case "stream":
		fs.StringVar(&fromFlag, "from", "next", "where the stream starts: next (values from now on), oldest (all the ring holds) or last=N (the newest N it holds, then live)")
		fs.Uint64Var(&inv.count, "count", 0, "stop after this many values (0: until interrupted)")
	case "take":
		fs.DurationVar(&inv.timeout, "timeout", 5*time.Second, "how long to wait for a value (the server caps it at 60s)")
	case "status":
		fs.DurationVar(&inv.rateWindow, "rate-window", 10*time.Second, "how long to wait for a second report to compute rates (0: no rates)")
	case "publish":
		fs.StringVar(&inv.subject, "subject", "", "the subject to publish on (default: the Record's, which must then have no wildcard)")
		fs.StringArrayVar(&inv.headers, "header", nil, "a NATS header K=V, e.g. Recbuf-Device=gw-1 (repeatable)")
	}
	if inv.name == "stream" || inv.name == "latest" || inv.name == "take" {
		fs.StringVar(&inv.tokenFile, "token-file", "", "a file holding a ServiceAccount token with the Record's audience, "+client.Audience("NAMESPACE", "RECORD")+
			", for Records with spec.consumers.authentication ServiceAccountToken (e.g. from `kubectl create token SA --audience "+client.Audience("NAMESPACE", "RECORD")+"`); re-read on every request")
		fs.StringVar(&inv.serviceAccount, "service-account", "", "read as this ServiceAccount of the Record's namespace: the plugin requests its tokens (TokenRequest, create on serviceaccounts/token) with the Record's audience, renewed before they expire; instead of --token-file")
		fs.StringVarP(&output, "output", "o", "text", "text (SEQ PAYLOAD per line, events on stderr) or json (one object per line)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if want := positional[inv.name]; fs.NArg() != want {
		what := "RECORD"
		if inv.name == "publish" {
			what = "RECORD DATA"
		}
		return fmt.Errorf("%w: want %s, got %d arguments", errUsage, what, fs.NArg())
	}
	if inv.tokenFile != "" && inv.serviceAccount != "" {
		return fmt.Errorf("%w: --token-file and --service-account: pass one", errUsage)
	}
	inv.record, inv.args = fs.Arg(0), fs.Args()[1:]
	var err error
	if inv.name == "stream" {
		if inv.from, err = client.ParseStart(fromFlag); err != nil {
			return fmt.Errorf("%w: --from %w", errUsage, err)
		}
	}
	if output != "" {
		if inv.output, err = valueout.ParseFormat(output); err != nil {
			return fmt.Errorf("%w: --output: %w", errUsage, err)
		}
	}
	return nil
}

func (inv *invocation) printer() *valueout.Printer {
	return &valueout.Printer{Format: inv.output, Out: inv.stdout, Err: inv.stderr}
}
