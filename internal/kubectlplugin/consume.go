package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	recbufv1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/pkg/client"
)

// httpPortName is the buffer Service's consumer API port.
const httpPortName = "http"

// session is a command's way to one buffer pod of a Record.
type session struct {
	k   *kube
	rec *recbufv1.Record
	fw  *forwarding
	c   *client.Client
}

// open resolves inv's Record, checks that it is of one of the types
// (none: any), finds a Ready buffer pod and forwards to its consumer API.
func open(ctx context.Context, inv *invocation, types ...recbufv1.BufferType) (*session, error) {
	k, err := connect(inv.kube)
	if err != nil {
		return nil, err
	}
	rec, err := k.record(ctx, inv.record)
	if err != nil {
		return nil, err
	}
	if err := checkType(inv.name, rec, types...); err != nil {
		return nil, err
	}
	var opts []client.Option
	switch {
	case inv.tokenFile != "":
		opts = append(opts, client.WithBearerTokenFile(inv.tokenFile))
	case inv.serviceAccount != "":
		tokens := &tokenSource{k: k, namespace: rec.Namespace, serviceAccount: inv.serviceAccount, audience: client.Audience(rec.Namespace, rec.Name)}
		// A first token now: a ServiceAccount that does not exist, or a
		// user who may not request its tokens, is told before any pod is
		// reached.
		if _, err := tokens.token(ctx); err != nil {
			return nil, err
		}
		opts = append(opts, client.WithBearerTokenFunc(tokens.token))
	case rec.ConsumerAuthenticationMode() == recbufv1.ConsumerAuthenticationServiceAccountToken:
		_ = inv.printer().Note(fmt.Sprintf("warning: record %s asks its consumers for a ServiceAccount token with audience %s (spec.consumers.authentication); pass --service-account SA or --token-file", rec.Name, client.Audience(rec.Namespace, rec.Name)))
	}
	t, err := k.recordPod(ctx, rec, httpPortName)
	why := readiness(rec)
	switch {
	case err != nil && why != "":
		return nil, fmt.Errorf("record %s has no buffer pod to read from: %s (%w)", rec.Name, why, err)
	case err != nil:
		return nil, err
	case why != "":
		// A Record can be not Ready while a pod serves (its reports are
		// late, a rollout is stuck): say so, and try.
		_ = inv.printer().Note(fmt.Sprintf("warning: record %s is not Ready: %s; reading from pod %s anyway", rec.Name, why, t.pod))
	}
	fw, err := k.forward(ctx, rec.Namespace, t, inv.stderr)
	if err != nil {
		return nil, err
	}
	c, err := client.New("http://"+fw.addr()+"/v1/records/"+rec.Name, opts...)
	if err != nil {
		fw.stop()
		return nil, err
	}
	return &session{k: k, rec: rec, fw: fw, c: c}, nil
}

func (s *session) close() { s.fw.stop() }

// checkType refuses a command a Record's type does not serve, naming the type.
func checkType(cmd string, rec *recbufv1.Record, types ...recbufv1.BufferType) error {
	if len(types) == 0 {
		return nil
	}
	for _, t := range types {
		if rec.Spec.Buffer.Type == t {
			return nil
		}
	}
	hint := ""
	switch cmd {
	case "take":
		hint = ": read it with latest or stream"
	case "stream":
		hint = ": its stream starts with the one value it holds anyway, so use --from next"
	}
	return fmt.Errorf("%s is for %s records; record %s is a %s%s", what(cmd), types[0], rec.Name, rec.Spec.Buffer.Type, hint)
}

func what(cmd string) string {
	if cmd == "stream" {
		return "stream --from last=N"
	}
	return cmd
}

// errEnough ends a stream that printed what it was asked for.
var errEnough = errors.New("enough values")

func stream(ctx context.Context, inv *invocation) error {
	var types []recbufv1.BufferType
	if inv.from.Last() > 0 {
		types = []recbufv1.BufferType{recbufv1.BufferTypeSpmcRing}
	}
	s, err := open(ctx, inv, types...)
	if err != nil {
		return err
	}
	defer s.close()
	// The stream ends when the forwarding does: its reconnects would only
	// reach a local port that no longer leads anywhere.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.fw.done:
			cancel()
		case <-sctx.Done():
		}
	}()
	p := inv.printer()
	var n uint64
	opts := append([]client.StreamOption{client.From(inv.from)},
		client.OnLag(func(missed uint64) { _ = p.Lag(missed) }),
		client.OnReset(func(r client.Reset) { _ = p.Reset(r) }),
		client.OnBackfill(func(b client.Backfill) { _ = p.Backfill(b) }),
	)
	err = s.c.Stream(sctx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
		if err := p.Value(v); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		n++
		if inv.count > 0 && n >= inv.count {
			return errEnough
		}
		return nil
	}), opts...)
	switch {
	case errors.Is(err, errEnough):
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case sctx.Err() != nil:
		return s.fw.lost()
	}
	return describe(s.rec, err)
}

// describe adds to a consumer API error what the user can do about it.
func describe(rec *recbufv1.Record, err error) error {
	var se *client.StatusError
	if errors.As(err, &se) {
		return fmt.Errorf("record %s answered %d: %s", rec.Name, se.StatusCode, se.Message)
	}
	return err
}

func latest(ctx context.Context, inv *invocation) error {
	s, err := open(ctx, inv)
	if err != nil {
		return err
	}
	defer s.close()
	v, err := s.c.Latest(ctx)
	if errors.Is(err, client.ErrNoValue) {
		return fmt.Errorf("record %s holds no value yet", s.rec.Name)
	}
	if err != nil {
		return describe(s.rec, err)
	}
	return inv.printer().Value(v)
}

func take(ctx context.Context, inv *invocation) error {
	s, err := open(ctx, inv, recbufv1.BufferTypeMailbox)
	if err != nil {
		return err
	}
	defer s.close()
	v, err := s.c.Take(ctx, inv.timeout)
	if errors.Is(err, client.ErrNoValue) {
		return fmt.Errorf("no value came to record %s within %s", s.rec.Name, inv.timeout.Round(time.Millisecond))
	}
	if err != nil {
		return describe(s.rec, err)
	}
	return inv.printer().Value(v)
}
