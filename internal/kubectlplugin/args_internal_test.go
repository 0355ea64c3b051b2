package kubectlplugin

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/valueout"
	"github.com/recbuf/recbuf/pkg/client"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want invocation
		// wantErr is a substring of the usage error; "" wants none.
		wantErr string
	}{
		{name: "stream takes a record, a namespace and last=N",
			args: []string{"stream", "telemetry", "-n", "e2e", "--from", "last=5"},
			want: invocation{name: "stream", record: "telemetry", kube: kubeFlags{namespace: "e2e"}, from: client.StartLast(5), output: valueout.Text}},
		{name: "stream's flags may come before the record, and json output",
			args: []string{"stream", "--from=oldest", "-o", "json", "--count", "3", "telemetry", "--context", "kind-x", "--kubeconfig", "/k"},
			want: invocation{name: "stream", record: "telemetry", kube: kubeFlags{context: "kind-x", kubeconfig: "/k"}, from: client.StartOldest,
				output: valueout.JSON, count: 3}},
		{name: "stream starts at the next value by default",
			args: []string{"stream", "telemetry"}, want: invocation{name: "stream", record: "telemetry", output: valueout.Text}},
		{name: "--from next is the default start",
			args: []string{"stream", "telemetry", "--from=next"}, want: invocation{name: "stream", record: "telemetry", output: valueout.Text}},
		{name: "take waits 5s by default", args: []string{"take", "commands"},
			want: invocation{name: "take", record: "commands", output: valueout.Text, timeout: 5 * time.Second}},
		{name: "take sends the token of a token file", args: []string{"take", "commands", "--token-file", "/t/token"},
			want: invocation{name: "take", record: "commands", output: valueout.Text, timeout: 5 * time.Second, tokenFile: "/t/token"}},
		{name: "status waits 10s for rates by default", args: []string{"status", "state", "--namespace=x"},
			want: invocation{name: "status", record: "state", kube: kubeFlags{namespace: "x"}, rateWindow: 10 * time.Second}},
		{name: "publish takes a record, data and headers",
			args: []string{"publish", "commands", `{"command":"reboot"}`, "--header", "Recbuf-Device=gw-1", "--subject", "devices.x"},
			want: invocation{name: "publish", record: "commands", args: []string{`{"command":"reboot"}`}, headers: []string{"Recbuf-Device=gw-1"}, subject: "devices.x"}},
		{name: "last=0 is refused with a reason", args: []string{"stream", "t", "--from", "last=0"}, wantErr: `--from "last=0": N must be a positive integer`},
		{name: "a last that is not a number is refused with a reason", args: []string{"stream", "t", "--from", "last=ten"}, wantErr: `--from "last=ten": N must be a positive integer`},
		{name: "an unknown start is refused with the grammar", args: []string{"stream", "t", "--from", "middle"}, wantErr: `--from "middle": want next, oldest or last=N`},
		{name: "an unknown output is refused", args: []string{"latest", "t", "-o", "yaml"}, wantErr: `output "yaml" is neither json nor text`},
		{name: "a command without its record is refused", args: []string{"latest"}, wantErr: "want RECORD, got 0 arguments"},
		{name: "publish without data is refused", args: []string{"publish", "commands"}, wantErr: "want RECORD DATA, got 1 arguments"},
		{name: "a flag of another command is refused", args: []string{"status", "s", "--from", "oldest"}, wantErr: "unknown flag: --from"},
		{name: "take requests tokens of a ServiceAccount", args: []string{"take", "commands", "--service-account", "reader"},
			want: invocation{name: "take", record: "commands", output: valueout.Text, timeout: 5 * time.Second, serviceAccount: "reader"}},
		{name: "a token file and a ServiceAccount are one too many", args: []string{"latest", "s", "--token-file", "/t", "--service-account", "reader"},
			wantErr: "--token-file and --service-account: pass one"},
		{name: "status takes no token file, it reads no values", args: []string{"status", "s", "--token-file", "/t"}, wantErr: "unknown flag: --token-file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			inv := &invocation{name: tc.args[0], stderr: &stderr}
			err := inv.parse(tc.args[1:])
			if tc.wantErr != "" {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			inv.stderr = nil
			if inv.args == nil {
				inv.args = []string{}
			}
			if tc.want.args == nil {
				tc.want.args = []string{}
			}
			if diff := cmp.Diff(tc.want, *inv, cmp.AllowUnexported(invocation{}, kubeFlags{}, client.Start{})); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunExitStatus(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantStatus int
		wantStderr string
	}{
		{name: "no command prints the usage and fails", args: nil, wantStatus: exitUsage, wantStderr: "kubectl recbuf stream RECORD"},
		{name: "help prints the usage", args: []string{"--help"}, wantStatus: exitOK, wantStderr: "Usage:"},
		{name: "an unknown command fails with the usage", args: []string{"tial", "x"}, wantStatus: exitUsage, wantStderr: `unknown command "tial"`},
		{name: "a command's help is no failure", args: []string{"stream", "--help"}, wantStatus: exitOK, wantStderr: "--from string"},
		{name: "tail is another name for stream", args: []string{"tail", "--help"}, wantStatus: exitOK, wantStderr: "kubectl recbuf stream"},
		{name: "a bad flag is a usage failure", args: []string{"stream", "t", "--from", "x"}, wantStatus: exitUsage, wantStderr: `kubectl recbuf stream: usage: --from "x": want`},
		{name: "a usage failure names the command as typed", args: []string{"tail", "t", "--from", "last=0"}, wantStatus: exitUsage,
			wantStderr: `kubectl recbuf tail: usage: --from "last=0": N must be a positive integer`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := Run(t.Context(), tc.args, &out, &errOut); got != tc.wantStatus || !strings.Contains(errOut.String(), tc.wantStderr) {
				t.Errorf("got status %d and stderr %q, want %d and %q", got, errOut.String(), tc.wantStatus, tc.wantStderr)
			}
		})
	}
}

func TestInClusterService(t *testing.T) {
	cases := []struct {
		name, url                     string
		wantNS, wantName, wantErrPart string
		wantPort                      int32
	}{
		{name: "a Service URL names its namespace", url: "nats://recbuf-nats.recbuf-system.svc:4222", wantNS: "recbuf-system", wantName: "recbuf-nats", wantPort: 4222},
		{name: "the cluster domain may follow", url: "nats://nats.nats.svc.cluster.local:4333", wantNS: "nats", wantName: "nats", wantPort: 4333},
		{name: "a bare name is in the Record's namespace, on NATS's port", url: "nats://nats", wantNS: "records", wantName: "nats", wantPort: 4222},
		{name: "name.namespace without svc is a Service too", url: "nats://nats.infra:4222", wantNS: "infra", wantName: "nats", wantPort: 4222},
		{name: "the first of several servers counts", url: "nats://a.b.svc:1,nats://c.d.svc:2", wantNS: "b", wantName: "a", wantPort: 1},
		{name: "a host outside the cluster is refused", url: "tls://nats.example.com:4222", wantErrPart: "nats.example.com:4222 is not a Service in this cluster"},
		{name: "an IP address is refused", url: "nats://10.0.0.1:4222", wantErrPart: "is not a Service in this cluster"},
		{name: "a URL without a host is refused", url: "nats://", wantErrPart: "not a URL with a host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, name, port, err := inClusterService(tc.url, "records")
			if tc.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErrPart)
				}
				return
			}
			if err != nil || ns != tc.wantNS || name != tc.wantName || port != tc.wantPort {
				t.Fatalf("got %s/%s:%d, %v; want %s/%s:%d", ns, name, port, err, tc.wantNS, tc.wantName, tc.wantPort)
			}
		})
	}
}

func reportAt(sec int64, produced, delivered, subscribers int64) *recbufv1.Record {
	t := metav1.NewTime(time.Unix(sec, 0))
	return &recbufv1.Record{Status: recbufv1.RecordStatus{LastReportTime: &t,
		RecordCounters: recbufv1.RecordCounters{Produced: produced, Delivered: delivered, Subscribers: subscribers}}}
}

func TestRates(t *testing.T) {
	cases := []struct {
		name string
		a, b *recbufv1.Record
		want map[string]float64
	}{
		{name: "counters grow over the time between two reports",
			a: reportAt(100, 1000, 2000, 3), b: reportAt(104, 1040, 2120, 9),
			want: map[string]float64{"produced": 10, "delivered": 30, "lagEvents": 0, "laggedValues": 0, "skipped": 0, "overwrites": 0, "evicted": 0, "dropped": 0}},
		{name: "the same report twice has no rate", a: reportAt(100, 1, 1, 0), b: reportAt(100, 1, 1, 0)},
		{name: "a counter that shrank (a pod restarted) has no rate",
			a: reportAt(100, 1000, 10, 0), b: reportAt(102, 10, 20, 0),
			want: map[string]float64{"delivered": 5, "lagEvents": 0, "laggedValues": 0, "skipped": 0, "overwrites": 0, "evicted": 0, "dropped": 0}},
		{name: "without reports there is no rate", a: &recbufv1.Record{}, b: &recbufv1.Record{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, rates(tc.a, tc.b)); diff != "" {
				t.Errorf("rates (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteStatus(t *testing.T) {
	now := time.Unix(10_000, 0)
	capacity := int32(1024)
	maxBytes := resource.MustParse("64Mi")
	rec := reportAt(9_990, 48210, 96000, 2)
	rec.Namespace, rec.Name, rec.Generation = "e2e", "telemetry", 2
	rec.Spec.Buffer = recbufv1.BufferSpec{Type: recbufv1.BufferTypeSpmcRing, Capacity: &capacity, MaxBytes: &maxBytes}
	rec.Status.ObservedGeneration = 2
	rec.Status.Endpoint = "http://telemetry-recbuf.e2e.svc:8080/v1/records/telemetry"
	rec.Status.Subject = "devices.telemetry"
	rec.Status.ReportingPods = 1
	rec.Status.Conditions = []metav1.Condition{
		{Type: "Ready", Status: "False", Reason: "Disconnected", Message: "pod a is not\nconnected", ObservedGeneration: 2, LastTransitionTime: metav1.NewTime(now.Add(-3 * time.Minute))},
		{Type: "NATSConnected", Status: "False", Reason: "Disconnected", Message: "pod a", ObservedGeneration: 2, LastTransitionTime: metav1.NewTime(now.Add(-90 * time.Second))},
	}
	rec.Status.Pods = []recbufv1.RecordPodStatus{{Name: "telemetry-recbuf-abc", Connected: false, Produced: 48210, Subscribers: 2, Dropped: 1}}
	var b strings.Builder
	if err := writeStatus(&b, rec, map[string]float64{"produced": 12.25, "delivered": 24.5}, "per second between two reports 2s apart", now); err != nil {
		t.Fatal(err)
	}
	want := `Record e2e/telemetry (SpmcRing, capacity 1024, maxBytes 64Mi): not Ready: Ready is False (Disconnected): pod a is not connected
Endpoint:     http://telemetry-recbuf.e2e.svc:8080/v1/records/telemetry
Subject:      devices.telemetry
Generation:   2 (status observed 2)
Last report:  10s ago (1970-01-01T02:46:30Z), from 1 pods
Last message: never
Rates:        per second between two reports 2s apart

CONDITION      STATUS  REASON        SINCE  MESSAGE
Ready          False   Disconnected  3m     pod a is not connected
NATSConnected  False   Disconnected  90s    pod a

COUNTER       VALUE  RATE
produced      48210  12.2/s
delivered     96000  24.5/s
subscribers   2      (now)
lagEvents     0      -
laggedValues  0      -
skipped       0      -
overwrites    0      -
evicted       0      -
dropped       0      -

POD                   CONNECTED  PRODUCED  SUBSCRIBERS  DROPPED
telemetry-recbuf-abc  false      48210     2            1
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestRateNote(t *testing.T) {
	cases := []struct {
		name   string
		a, b   *recbufv1.Record
		window time.Duration
		want   string
	}{
		{name: "rates say what they are over", a: reportAt(100, 1, 0, 0), b: reportAt(102, 5, 0, 0), window: 10 * time.Second,
			want: "per second between two reports 2s apart"},
		{name: "an idle Record has no new report", a: reportAt(100, 1, 0, 0), b: reportAt(100, 1, 0, 0), window: 10 * time.Second,
			want: "none: no new report within 10s (an idle Record's counters do not change, and so its status does not either)"},
		{name: "a Record without reports has none", a: &recbufv1.Record{}, b: &recbufv1.Record{}, window: 10 * time.Second,
			want: "none: no report yet"},
		{name: "no window, no rates", a: reportAt(100, 1, 0, 0), b: reportAt(100, 1, 0, 0), want: "not asked for (--rate-window=0)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := rateNote(tc.a, tc.b, rates(tc.a, tc.b), tc.window); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
