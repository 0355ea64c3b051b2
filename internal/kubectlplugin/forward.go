package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// forward port-forwards a local port on 127.0.0.1, chosen by the system,
// to t's port through the API server, as `kubectl port-forward` does
// (WebSocket first, SPDY when the server does not upgrade to it). It
// returns once the local port listens. errOut receives the forwarder's
// complaints about single connections.
//
// This is the one piece envtest cannot test (it has no kubelet to forward
// to): the e2e suite on kind does.
func (k *kube) forward(ctx context.Context, ns string, t target, errOut io.Writer) (*forwarding, error) {
	u := k.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(t.pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(k.cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward: %w", err)
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	if ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, k.cfg); err == nil {
		dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	fctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreamingWithContext(fctx, dialer, []string{"127.0.0.1"},
		[]string{"0:" + strconv.Itoa(int(t.port))}, ready, io.Discard, errOut)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("port-forward: %w", err)
	}
	f := &forwarding{pod: t.pod, cancel: cancel, done: make(chan struct{})}
	go func() {
		f.err = fw.ForwardPorts()
		close(f.done)
	}()
	select {
	case <-ready:
	case <-f.done:
		cancel()
		return nil, k.explainForward(ns, t, f.err)
	case <-ctx.Done():
		f.stop()
		return nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		f.stop()
		return nil, fmt.Errorf("port-forward to pod %s/%s: no local port: %w", ns, t.pod, err)
	}
	f.local = ports[0].Local
	return f, nil
}

// forwarding is a running port-forward.
type forwarding struct {
	pod    string
	local  uint16
	cancel context.CancelFunc
	// done is closed when the forwarding ended, stopped or lost (its pod
	// went away); err says why, once done is closed.
	done chan struct{}
	err  error
}

// addr is the local address that leads to the pod.
func (f *forwarding) addr() string { return "127.0.0.1:" + strconv.Itoa(int(f.local)) }

// stop ends the forwarding and waits for it.
func (f *forwarding) stop() {
	f.cancel()
	<-f.done
}

// lost says why the forwarding ended by itself.
func (f *forwarding) lost() error {
	msg := "the port-forward to pod " + f.pod + " ended"
	if f.err != nil {
		return fmt.Errorf("%s: %w: run the command again to reach another buffer pod", msg, f.err)
	}
	return errors.New(msg + ": run the command again to reach another buffer pod")
}

func (k *kube) explainForward(ns string, t target, err error) error {
	if err == nil {
		err = errors.New("ended before it was ready")
	}
	return fmt.Errorf("port-forward to pod %s/%s port %d (you need create on pods/portforward in %s; check with: kubectl auth can-i create pods/portforward -n %s): %w",
		ns, t.pod, t.port, ns, ns, err)
}
