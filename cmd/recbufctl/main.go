// Command recbufctl reads a recbuf record from the command line, with the Go
// client in pkg/client: it streams it, prints its latest value, or takes
// values from a Mailbox record. It ships in the edgesim image, so that demos
// and the e2e suite can consume from pods:
//
//	recbufctl stream URL [--from next|oldest|last=N] [--count N] [--duration D] [--delay D] [--stall D] [--until-lag N] [--quiet]
//	recbufctl latest URL
//	recbufctl take URL [--count N] [--timeout D] [--interval D] [--quiet]
//	recbufctl get URL [--timeout D]
//	recbufctl audience URL
//
// URL is the record's endpoint (its status.endpoint), for example
// http://telemetry-recbuf.default.svc:8080/v1/records/telemetry.
// Every command takes --token-file FILE for a Record whose consumers
// authenticate: the file's token is sent as Authorization: Bearer, read
// again for each request (a projected token is rotated by the kubelet).
// The token's audience must be the Record's own, recbuf.dev/NAMESPACE/NAME:
// audience prints it, {"event":"audience","audience":"..."}, for a URL of
// the form http://SERVICE.NAMESPACE.svc:PORT/v1/records/NAME
// (client.AudienceForURL). recbufctl requests no token itself: it runs in
// a pod, whose projected serviceAccountToken volume (audience: that
// value) is the token's source, renewed by the kubelet; kubectl recbuf
// --service-account requests tokens from outside the cluster.
//
// --from is where a stream starts, spelled as the kubectl plugin spells it
// (client.ParseStart reads it for both): next (the default: values pushed
// from now on), oldest (all a ring holds) or last=N (the newest N a ring
// holds, then live). --from-oldest, from before there was a --from, is a
// deprecated alias of --from=oldest. tail is an alias of stream, the
// plugin's former verb: both tools take both.
//
// Output is JSON lines on standard output: {"event":"value",...} per value,
// {"event":"lag","missed":N} when a stream fell behind,
// {"event":"backfill","count":N,"lastSeq":S} before the values of --from
// last=N, {"event":"reset",...} when a resume reached another buffer
// process, and a final
// {"event":"summary",...} that checks order: on a stream, sequence numbers
// must grow, each device's sequence numbers too, and every jump in sequence
// numbers must be announced by a lag event carrying its exact size.
//
// get fetches any other URL of a buffer process, such as /metrics on its
// metrics port, and prints {"event":"get","status":200,"bytes":N}: it tells
// whether a port is reachable from where recbufctl runs. It exits 1 on a
// status other than 200 or when no answer comes within --timeout, which is
// what a connection that a NetworkPolicy drops looks like.
//
// --delay and --stall make a deliberately slow consumer. Socket buffers
// absorb megabytes of a slow consumer's backlog before the buffer process
// sees it fall behind, so a consumer that stops reading for a while
// (--stall) while a burst is published shows lag sooner than one that reads
// slowly.
//
// SIGTERM and Ctrl-C end a command with its summary.
//
// From a terminal outside the cluster, the kubectl plugin (cmd/kubectl-recbuf)
// reads a Record by name through the API server instead; its -o json value
// lines are these.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/recbuf/recbuf/internal/valueout"
	"github.com/recbuf/recbuf/pkg/client"
)

func main() { os.Exit(runWithSignals()) }

// runWithSignals runs a command until it ends, SIGTERM or SIGINT. It is
// apart from main so that its deferred calls run before os.Exit.
func runWithSignals() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

const usage = `usage:
  recbufctl stream URL [flags]   stream values (Server-Sent Events); tail is the same
  recbufctl latest URL           print the current value
  recbufctl take URL [flags]     take values from a Mailbox record
  recbufctl get URL [flags]      GET another URL of a buffer process (/metrics)
  recbufctl audience URL         print the audience a token for the record must have
Run "recbufctl COMMAND -h" for a command's flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = fmt.Fprintln(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, *json.Encoder, io.Writer) error{
		"stream": stream,
		// The kubectl plugin's verb until both took stream.
		"tail":     stream,
		"latest":   latest,
		"take":     take,
		"get":      get,
		"audience": audienceCmd,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		_, _ = fmt.Fprintln(stderr, usage)
		return 2
	}
	err := cmd(ctx, args[1:], json.NewEncoder(stdout), stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		_, _ = fmt.Fprintf(stderr, "recbufctl %s: %v\n", args[0], err)
		return 2
	default:
		_, _ = fmt.Fprintf(stderr, "recbufctl %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

// parse parses a command's flags, which may follow its URL, and returns the
// URL.
func parse(fs *flag.FlagSet, args []string) (string, error) {
	var url string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		url, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if url == "" && fs.NArg() == 1 {
		url = fs.Arg(0)
	} else if fs.NArg() > 0 || url == "" {
		return "", fmt.Errorf("%w: want exactly one record URL", errUsage)
	}
	return url, nil
}

// newClient parses the command line, with the flags every command shares,
// and returns a client for its URL.
func newClient(fs *flag.FlagSet, args []string) (*client.Client, error) {
	tokenFile := fs.String("token-file", "", "file holding the bearer token to send (a projected ServiceAccount token with the Record's audience, "+client.Audience("NAMESPACE", "NAME")+": see recbufctl audience), read again for each request")
	url, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	var opts []client.Option
	if *tokenFile != "" {
		opts = append(opts, client.WithBearerTokenFile(*tokenFile))
	}
	c, err := client.New(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, nil
}

// errEnough ends a stream that received what it was asked for.
var errEnough = errors.New("enough values")

func stream(ctx context.Context, args []string, out *json.Encoder, stderr io.Writer) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "next", "where the stream starts: next (values from now on), oldest (all the ring holds) or last=N (the newest N it holds, then live)")
	oldest := fs.Bool("from-oldest", false, "deprecated: use --from=oldest")
	count := fs.Uint64("count", 0, "stop after this many values (0: no limit)")
	duration := fs.Duration("duration", 0, "stop after this long (0: no limit)")
	delay := fs.Duration("delay", 0, "wait this long after each value: a deliberately slow consumer")
	untilLag := fs.Uint64("until-lag", 0, "stop after this many lag events (0: no limit)")
	quiet := fs.Bool("quiet", false, "print lag events and the summary only")
	stall := fs.Duration("stall", 0, "stop reading this long once, after --stall-after values: a consumer that falls behind")
	stallAfter := fs.Uint64("stall-after", 1, "values read before the stall")
	c, err := newClient(fs, args)
	if err != nil {
		return err
	}
	start, err := streamStart(fs, *from, *oldest, stderr)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	s := streamSummary{Event: "summary"}
	check := newOrderCheck(&s)
	// Lag is reported through a callback, which cannot end the stream: the
	// next value does, once it has been checked against the lag.
	onLag := func(missed uint64) {
		check.lag(missed)
		_ = out.Encode(map[string]any{"event": "lag", "missed": missed})
	}
	onReset := func(r client.Reset) {
		check.restart()
		_ = out.Encode(map[string]any{"event": "reset", "after": r.After, "lastSeq": r.LastSeq, "reason": r.Reason})
	}
	onBackfill := func(b client.Backfill) {
		_ = out.Encode(map[string]any{"event": "backfill", "count": b.Count, "lastSeq": b.LastSeq})
	}
	onConnect := func(conn client.Connection) {
		if conn.Resumed {
			s.Reconnects++
		}
	}
	// The handler sleeps on the command's context, not the connection's:
	// a deliberate pause is not cut short when a connection ends.
	cmdCtx := ctx
	handle := func(_ context.Context, v client.Value) error {
		if cmdCtx.Err() != nil {
			// Values read ahead before the command was ended.
			return errEnough
		}
		check.value(v)
		if !*quiet {
			if err := out.Encode(valueout.NewValueLine(v)); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		if (*count > 0 && s.Values >= *count) || (*untilLag > 0 && s.LagEvents >= *untilLag) {
			return errEnough
		}
		pause := *delay
		if *stall > 0 && s.Values == *stallAfter {
			pause += *stall
		}
		sleep(cmdCtx, pause)
		return nil
	}
	opts := []client.StreamOption{client.From(start), client.OnLag(onLag), client.OnReset(onReset),
		client.OnBackfill(onBackfill), client.OnConnect(onConnect)}
	err = c.Stream(ctx, client.HandlerFunc(handle), opts...)
	if errors.Is(err, errEnough) || ctx.Err() != nil {
		err = nil
	}
	s.Ordered = s.ordered()
	if err != nil {
		s.Error = err.Error()
	}
	if encErr := out.Encode(s); encErr != nil && err == nil {
		err = fmt.Errorf("write: %w", encErr)
	}
	return err
}

// streamStart is where a stream starts: --from, or the deprecated
// --from-oldest, which still works for the scripts and pods that give it.
// It warns on stderr when given. --from-oldest=false asks for nothing (it
// never meant more than the default), and --from-oldest with a --from
// other than oldest is refused rather than one silently beating the other.
func streamStart(fs *flag.FlagSet, from string, oldest bool, stderr io.Writer) (client.Start, error) {
	start, err := client.ParseStart(from)
	if err != nil {
		return client.Start{}, fmt.Errorf("%w: --from %w", errUsage, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["from-oldest"] {
		return start, nil
	}
	_, _ = fmt.Fprintln(stderr, "recbufctl: --from-oldest is deprecated: use --from=oldest")
	switch {
	case !oldest:
		return start, nil
	case set["from"] && start != client.StartOldest:
		return client.Start{}, fmt.Errorf("%w: --from-oldest contradicts --from %s: give --from only", errUsage, start)
	}
	return client.StartOldest, nil
}

func latest(ctx context.Context, args []string, out *json.Encoder, stderr io.Writer) error {
	fs := flag.NewFlagSet("latest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	c, err := newClient(fs, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	v, err := c.Latest(ctx)
	if err != nil {
		return err
	}
	return out.Encode(valueout.NewValueLine(v))
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// takeSummary is the last line of `take`.
type takeSummary struct {
	Event string `json:"event"`
	Taken uint64 `json:"taken"`
	// Empty counts takes that waited their whole timeout for nothing.
	Empty uint64 `json:"empty"`
	Error string `json:"error,omitempty"`
}

func take(ctx context.Context, args []string, out *json.Encoder, stderr io.Writer) error {
	fs := flag.NewFlagSet("take", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Uint64("count", 1, "take this many values (0: until interrupted)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long each take waits for a value")
	interval := fs.Duration("interval", 0, "wait this long between takes: a deliberately slow taker")
	quiet := fs.Bool("quiet", false, "print the summary only")
	c, err := newClient(fs, args)
	if err != nil {
		return err
	}
	s := takeSummary{Event: "summary"}
	for *count == 0 || s.Taken < *count {
		v, err := c.Take(ctx, *timeout)
		switch {
		case ctx.Err() != nil:
			return out.Encode(s)
		case errors.Is(err, client.ErrNoValue):
			s.Empty++
		case err != nil:
			s.Error = err.Error()
			_ = out.Encode(s)
			return err
		default:
			s.Taken++
			if !*quiet {
				if err := out.Encode(valueout.NewValueLine(v)); err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
		}
		if *count == 0 || s.Taken < *count {
			sleep(ctx, *interval)
		}
	}
	return out.Encode(s)
}

// getLine is what `get` prints.
type getLine struct {
	Event  string `json:"event"`
	Status int    `json:"status"`
	Bytes  int64  `json:"bytes"`
}

func get(ctx context.Context, args []string, out *json.Encoder, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	url, err := parse(fs, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", url, err)
	}
	if err := out.Encode(getLine{Event: "get", Status: resp.StatusCode, Bytes: n}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// audienceCmd prints the audience of the tokens the record at URL accepts.
func audienceCmd(_ context.Context, args []string, out *json.Encoder, stderr io.Writer) error {
	fs := flag.NewFlagSet("audience", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url, err := parse(fs, args)
	if err != nil {
		return err
	}
	aud, err := client.AudienceForURL(url)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err := out.Encode(map[string]string{"event": "audience", "audience": aud}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
