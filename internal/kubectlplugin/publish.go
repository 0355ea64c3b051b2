package kubectlplugin

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// publish publishes DATA on the Record's subject, through the NATS server
// its buffer pods use, for testing: it reads the server's URL from the
// Record's Deployment (the --nats-url its pods run with), resolves its
// host to a Service in the cluster (NAME.NAMESPACE.svc[.cluster.local]),
// port-forwards to a Ready pod of that Service and publishes there. A
// server outside the cluster, or one that needs the credentials of a
// Secret, is out of its reach: it says so.
func publish(ctx context.Context, inv *invocation) error {
	k, err := connect(inv.kube)
	if err != nil {
		return err
	}
	rec, err := k.record(ctx, inv.record)
	if err != nil {
		return err
	}
	subject := inv.subject
	if subject == "" {
		subject = rec.EffectiveSubject()
		if strings.ContainsAny(subject, "*>") {
			return fmt.Errorf("%w: record %s reads the wildcard subject %s: name one it matches with --subject", errUsage, rec.Name, subject)
		}
	}
	hdr, err := parseHeaders(inv.headers)
	if err != nil {
		return err
	}
	d, err := k.deployment(ctx, rec)
	if err != nil {
		return err
	}
	natsURL, withCredentials := "", false
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--nats-url="); ok {
				natsURL = v
			}
			withCredentials = withCredentials || strings.HasPrefix(a, "--nats-credentials-dir=")
		}
	}
	if natsURL == "" {
		return fmt.Errorf("deployment %s/%s runs no --nats-url: is it a recbuf buffer Deployment?", d.Namespace, d.Name)
	}
	if withCredentials {
		return fmt.Errorf("record %s's NATS server needs the credentials of a Secret, which publish does not read: publish with a NATS client that has them", rec.Name)
	}
	svcNS, svcName, port, err := inClusterService(natsURL, rec.Namespace)
	if err != nil {
		return err
	}
	t, err := k.servicePod(ctx, svcNS, svcName, "", port)
	if err != nil {
		return fmt.Errorf("record %s's NATS server %s: %w", rec.Name, natsURL, err)
	}
	fw, err := k.forward(ctx, svcNS, t, inv.stderr)
	if err != nil {
		return err
	}
	defer fw.stop()
	nc, err := nats.Connect("nats://"+fw.addr(), nats.Name("kubectl-recbuf publish"), nats.Timeout(10*time.Second),
		nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("connect to %s through the port-forward: %w", natsURL, err)
	}
	defer nc.Close()
	msg := &nats.Msg{Subject: subject, Data: []byte(inv.args[0]), Header: hdr}
	if err := nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("publish on %s: %w", subject, err)
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("publish on %s: %w", subject, err)
	}
	_, err = fmt.Fprintf(inv.stdout, "published %d bytes on %s (through %s, pod %s/%s)\n", len(msg.Data), subject, natsURL, svcNS, t.pod)
	return err
}

// inClusterService resolves the first server of a NATS URL list to the
// Service it names in the cluster: NAME.NAMESPACE.svc, with or without
// .cluster.local, or a bare NAME in the Record's namespace ns. The port is
// the URL's, 4222 when it has none.
func inClusterService(natsURL, ns string) (svcNS, name string, port int32, err error) {
	first, _, _ := strings.Cut(natsURL, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil || u.Hostname() == "" {
		return "", "", 0, fmt.Errorf("NATS url %q: not a URL with a host", first)
	}
	port = 4222
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return "", "", 0, fmt.Errorf("NATS url %q: port %q", first, p)
		}
		port = int32(n)
	}
	host := strings.TrimSuffix(strings.TrimSuffix(u.Hostname(), "."), ".cluster.local")
	host = strings.TrimSuffix(host, ".svc")
	parts := strings.Split(host, ".")
	switch {
	case net.ParseIP(u.Hostname()) != nil:
	case len(parts) == 1:
		return ns, parts[0], port, nil
	case len(parts) == 2:
		return parts[1], parts[0], port, nil
	}
	return "", "", 0, fmt.Errorf("record's NATS server %s is not a Service in this cluster (NAME.NAMESPACE.svc): publish with a NATS client that reaches it", u.Host)
}

// parseHeaders reads --header K=V flags.
func parseHeaders(hs []string) (nats.Header, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	h := nats.Header{}
	for _, kv := range hs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: --header %q: want K=V", errUsage, kv)
		}
		h.Add(k, v)
	}
	return h, nil
}
