package controllers

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

const (
	timeout = 20 * time.Second
	poll    = 50 * time.Millisecond
)

func TestBadRecordsAreRefusedWithAMessageNamingTheField(t *testing.T) {
	ns := newNamespace(t)
	singleLatest := recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}}
	withNATS := func(n recbufv1alpha1.NATSSource) recbufv1alpha1.RecordSpec {
		s := singleLatest
		s.Source = &recbufv1alpha1.SourceSpec{NATS: n}
		return s
	}
	ringWithConsumers := func(c recbufv1alpha1.ConsumersSpec) recbufv1alpha1.RecordSpec {
		s := ringSpec(8)
		s.Consumers = &c
		return s
	}
	tests := []struct {
		name string
		rec  *recbufv1alpha1.Record
		want string
	}{
		{
			name: "a SpmcRing without a capacity",
			rec:  newRecord(ns, "ring", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSpmcRing}}),
			want: "spec.buffer.capacity is required when spec.buffer.type is SpmcRing",
		},
		{
			name: "a SingleLatest with a capacity",
			rec: newRecord(ns, "latest", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{
				Type: recbufv1alpha1.BufferTypeSingleLatest, Capacity: ptr.To[int32](10)}}),
			want: "spec.buffer.capacity is forbidden unless spec.buffer.type is SpmcRing",
		},
		{
			name: "a Mailbox with a capacity",
			rec: newRecord(ns, "mailbox", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{
				Type: recbufv1alpha1.BufferTypeMailbox, Capacity: ptr.To[int32](1)}}),
			want: "spec.buffer.capacity is forbidden unless spec.buffer.type is SpmcRing",
		},
		{
			name: "an unknown buffer type",
			rec:  newRecord(ns, "ring", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: "Ring"}}),
			want: `spec.buffer.type: Unsupported value: "Ring"`,
		},
		{
			name: "a consumer stream limit of zero",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{MaxStreams: ptr.To[int32](0)})),
			want: "spec.consumers.maxStreams: Invalid value: 0: spec.consumers.maxStreams in body should be greater than or equal to 1",
		},
		{
			name: "a take limit past its maximum",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{MaxTakes: ptr.To[int32](100000)})),
			want: "spec.consumers.maxTakes: Invalid value: 100000: spec.consumers.maxTakes in body should be less than or equal to 65536",
		},
		{
			name: "an allowed origin with a path",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://dash.example.com/app"}})),
			want: "spec.consumers.allowedOrigins[0]: Invalid value: \"string\": spec.consumers.allowedOrigins[] must be '*' or an origin scheme://host[:port]",
		},
		{
			name: "an allowed origin with a trailing slash",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"http://localhost:8080", "https://dash.example.com/"}})),
			want: "spec.consumers.allowedOrigins[1]: Invalid value: \"string\": spec.consumers.allowedOrigins[] must be '*' or an origin",
		},
		{
			name: "an allowed origin with a wildcard in its host",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://*.example.com"}})),
			want: "spec.consumers.allowedOrigins[] must be '*' or an origin scheme://host[:port]",
		},
		{
			name: "an allowed origin without a scheme",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"dash.example.com"}})),
			want: "spec.consumers.allowedOrigins[] must be '*' or an origin scheme://host[:port]",
		},
		{
			name: "an allowed origin with an uppercase host",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://Dash.example.com"}})),
			want: "spec.consumers.allowedOrigins[] must be '*' or an origin scheme://host[:port]",
		},
		{
			name: "an allowed origin with a port beyond 65535",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"http://localhost:65536"}})),
			want: "spec.consumers.allowedOrigins[] must have a port between 1 and 65535",
		},
		{
			name: "an allowed origin that names https's default port",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://dash.example.com:443"}})),
			want: "spec.consumers.allowedOrigins[] must not name its scheme's default port",
		},
		{
			name: "an allowed origin longer than 280 characters",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{recbufv1alpha1.Origin("https://" + strings.Repeat("a", 280) + ".com")}})),
			want: "spec.consumers.allowedOrigins[0]: Too long: may not be more than 280 bytes",
		},
		{
			name: "more than 32 allowed origins",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: manyOrigins(33)})),
			want: "spec.consumers.allowedOrigins: Too many: 33: must have at most 32 items",
		},
		{
			name: "an allowed origin listed twice",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"http://localhost:8080", "http://localhost:8080"}})),
			want: "spec.consumers.allowedOrigins[1]: Duplicate value",
		},
		{
			name: "every origin beside a listed one",
			rec:  newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"*", "https://dash.example.com"}})),
			want: "spec.consumers.allowedOrigins: '*' must be the only entry",
		},
		{
			name: "every origin with ServiceAccount tokens",
			rec: newRecord(ns, "ring", ringWithConsumers(recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"*"},
				Authentication: recbufv1alpha1.ConsumerAuthenticationServiceAccountToken})),
			want: "spec.consumers.allowedOrigins: '*' is allowed only when spec.consumers.authentication is None",
		},
		{
			name: "a capacity of zero",
			rec:  newRecord(ns, "ring", ringSpec(0)),
			want: "spec.buffer.capacity: Invalid value: 0: spec.buffer.capacity in body should be greater than or equal to 1",
		},
		{
			name: "a capacity above a million",
			rec:  newRecord(ns, "ring", ringSpec(1_000_001)),
			want: "spec.buffer.capacity in body should be less than or equal to 1000000",
		},
		{
			name: "a subject with a space",
			rec:  newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{Subject: "sensors.temp 1"})),
			want: "spec.source.nats.subject must be dot-separated non-empty tokens without whitespace",
		},
		{
			name: "a subject with an empty token",
			rec:  newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{Subject: "sensors..temp"})),
			want: "spec.source.nats.subject must be dot-separated non-empty tokens without whitespace",
		},
		{
			name: "a subject with a full wildcard before its end",
			rec:  newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{Subject: "sensors.>.temp"})),
			want: "'>' only as the last one",
		},
		{
			name: "a subject with a wildcard inside a token",
			rec:  newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{Subject: "sensors.temp*"})),
			want: "spec.source.nats.subject must be dot-separated non-empty tokens without whitespace",
		},
		{
			name: "a queue group with a wildcard",
			rec:  newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{QueueGroup: "workers.*"})),
			want: "spec.source.nats.queueGroup must be dot-separated non-empty tokens without whitespace or wildcards",
		},
		{
			name: "an http URL",
			rec:  newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{URL: "http://nats:4222"})),
			want: "spec.source.nats.url must be a comma-separated list of nats://, tls://, ws:// or wss:// URLs",
		},
		{
			name: "a URL that carries a password",
			rec:  newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{URL: "nats://user:secret@nats:4222"})),
			want: "spec.source.nats.url must not carry credentials",
		},
		{
			name: "a credentials Secret name that is not a DNS subdomain",
			rec: newRecord(ns, "latest", withNATS(recbufv1alpha1.NATSSource{
				CredentialsSecretRef: &recbufv1alpha1.SecretReference{Name: "NATS_Creds"}})),
			want: "spec.source.nats.credentialsSecretRef.name must be a valid Secret name",
		},
		{
			name: "a maximum message size above 8 MiB",
			rec: newRecord(ns, "latest", recbufv1alpha1.RecordSpec{Buffer: singleLatest.Buffer,
				MaxMessageBytes: ptr.To[int32](8<<20 + 1)}),
			want: "spec.maxMessageBytes in body should be less than or equal to 8388608",
		},
		{
			name: "a byte budget on a SingleLatest",
			rec: newRecord(ns, "latest", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{
				Type: recbufv1alpha1.BufferTypeSingleLatest, MaxBytes: ptr.To(resource.MustParse("64Mi"))}}),
			want: "spec.buffer.maxBytes is forbidden unless spec.buffer.type is SpmcRing",
		},
		{
			name: "a byte budget of zero",
			rec:  newRecord(ns, "ring", withMaxBytes(ringSpec(8), "0")),
			want: "spec.buffer.maxBytes must be between 1 and 1Ti bytes",
		},
		{
			name: "a byte budget above 1Ti",
			rec:  newRecord(ns, "ring", withMaxBytes(ringSpec(8), "2Ti")),
			want: "spec.buffer.maxBytes must be between 1 and 1Ti bytes",
		},
		{
			name: "a byte budget smaller than the default largest message",
			rec:  newRecord(ns, "ring", withMaxBytes(ringSpec(8), "512Ki")),
			want: "spec.buffer.maxBytes must be at least spec.maxMessageBytes (1Mi when unset)",
		},
		{
			name: "a byte budget smaller than the declared largest message",
			rec: newRecord(ns, "ring", func() recbufv1alpha1.RecordSpec {
				s := withMaxBytes(ringSpec(8), "2Mi")
				s.MaxMessageBytes = ptr.To[int32](4 << 20)
				return s
			}()),
			want: "spec.buffer.maxBytes must be at least spec.maxMessageBytes",
		},
		{
			name: "a byte budget as large as the memory limit",
			rec: newRecord(ns, "ring", func() recbufv1alpha1.RecordSpec {
				s := withMaxBytes(ringSpec(1024), "256Mi")
				s.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
				return s
			}()),
			want: "spec.buffer.maxBytes must be less than spec.resources.limits.memory",
		},
		{
			name: "negative replicas",
			rec:  newRecord(ns, "latest", recbufv1alpha1.RecordSpec{Buffer: singleLatest.Buffer, Replicas: ptr.To[int32](-1)}),
			want: "spec.replicas in body should be greater than or equal to 0",
		},
		{
			name: "a Mailbox with two replicas",
			rec: newRecord(ns, "mailbox", recbufv1alpha1.RecordSpec{
				Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}, Replicas: ptr.To[int32](2)}),
			want: "spec.replicas must be 0 or 1 when spec.buffer.type is Mailbox",
		},
		{
			name: "a name too long for the children's names",
			rec:  newRecord(ns, strings.Repeat("a", 57), singleLatest),
			want: "metadata.name must be at most 56 characters",
		},
		{
			name: "a name that starts with a digit",
			rec:  newRecord(ns, "1st-floor", singleLatest),
			want: "metadata.name must be a DNS-1035 label",
		},
		{
			name: "a name with a dot",
			rec:  newRecord(ns, "floor.1", singleLatest),
			want: "metadata.name must be a DNS-1035 label",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k8s.Create(context.Background(), tt.rec)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got error %v, want Invalid", err)
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got message %q, want it to contain %q", err.Error(), tt.want)
			}
		})
	}
}

// withMaxBytes is spec with spec.buffer.maxBytes set to q.
func withMaxBytes(spec recbufv1alpha1.RecordSpec, q string) recbufv1alpha1.RecordSpec {
	spec.Buffer.MaxBytes = ptr.To(resource.MustParse(q))
	return spec
}

func TestGoodRecordsAreAccepted(t *testing.T) {
	ns := newNamespace(t)
	for i, spec := range []recbufv1alpha1.RecordSpec{
		withMaxBytes(ringSpec(1024), "64Mi"),
		withMaxBytes(ringSpec(1024), "1048576"), // exactly the default largest message
		func() recbufv1alpha1.RecordSpec {
			s := withMaxBytes(ringSpec(1024), "200Mi")
			s.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}
			return s
		}(),
	} {
		if err := k8s.Create(context.Background(), newRecord(ns, "budget-"+string(rune('a'+i)), spec)); err != nil {
			t.Errorf("a ring with maxBytes %s: got %v, want the Record accepted", spec.Buffer.MaxBytes, err)
		}
	}
	tests := []struct {
		name string
		nats recbufv1alpha1.NATSSource
	}{
		{"a subject with single-token wildcards", recbufv1alpha1.NATSSource{Subject: "devices.*.telemetry"}},
		{"a subject ending with a full wildcard", recbufv1alpha1.NATSSource{Subject: "devices.>"}},
		{"a queue group with dots", recbufv1alpha1.NATSSource{QueueGroup: "buffers.v1"}},
		{"a list of TLS URLs", recbufv1alpha1.NATSSource{URL: "tls://nats-0.nats:4222,tls://nats-1.nats:4222"}},
		{"a websocket URL with a path", recbufv1alpha1.NATSSource{URL: "wss://edge.example.com/nats"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord(ns, "ok-"+string(rune('a'+i)), recbufv1alpha1.RecordSpec{
				Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest},
				Source: &recbufv1alpha1.SourceSpec{NATS: tt.nats},
			})
			if err := k8s.Create(context.Background(), rec); err != nil {
				t.Errorf("got %v, want the Record accepted", err)
			}
		})
	}
}

// manyOrigins is n distinct allowed origins.
func manyOrigins(n int) []recbufv1alpha1.Origin {
	out := make([]recbufv1alpha1.Origin, n)
	for i := range out {
		out[i] = recbufv1alpha1.Origin("http://localhost:" + strconv.Itoa(3000+i))
	}
	return out
}

func TestRecordsWithGoodAllowedOriginsAreAccepted(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name      string
		consumers recbufv1alpha1.ConsumersSpec
	}{
		{"an https origin and an http one with a port", recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://dash.example.com", "http://localhost:8080"}}},
		{"an IPv4 address and a bracketed IPv6 one", recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"http://127.0.0.1:3000", "http://[::1]:8080"}}},
		{"the highest port", recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"http://localhost:65535"}}},
		{"32 origins", recbufv1alpha1.ConsumersSpec{AllowedOrigins: manyOrigins(32)}},
		{"every origin without authentication", recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"*"}}},
		{"every origin with authentication None said outright", recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"*"},
			Authentication: recbufv1alpha1.ConsumerAuthenticationNone}},
		{"listed origins with ServiceAccount tokens", recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://dash.example.com"},
			Authentication: recbufv1alpha1.ConsumerAuthenticationServiceAccountToken}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ringSpec(8)
			spec.Consumers = &tt.consumers
			if err := k8s.Create(context.Background(), newRecord(ns, "origins-"+string(rune('a'+i)), spec)); err != nil {
				t.Errorf("got %v, want the Record accepted", err)
			}
		})
	}
}

func TestARecordsAllowedOriginsReachItsBufferProcess(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	spec := ringSpec(8)
	spec.Consumers = &recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://dash.example.com", "http://localhost:8080"}}
	rec := newRecord(ns, "dash", spec)
	create(t, g, rec)

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dash-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--allowed-origins=https://dash.example.com,http://localhost:8080"))

	// A change of the list reaches the Deployment too.
	update(g, rec, func(rec *recbufv1alpha1.Record) { rec.Spec.Consumers.AllowedOrigins = []recbufv1alpha1.Origin{"*"} })
	g.Eventually(func(g Gomega) {
		g.Expect(get(d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--allowed-origins=*"))
	}, timeout, poll).Should(Succeed())
}

func TestDefaultsAreApplied(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "door", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}})
	create(t, g, rec)

	g.Expect(ptr.Deref(rec.Spec.Replicas, -1)).To(Equal(int32(1)), "spec.replicas")
	g.Expect(ptr.Deref(rec.Spec.MaxMessageBytes, -1)).To(Equal(int32(recbufv1alpha1.DefaultMaxMessageBytes)), "spec.maxMessageBytes")
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Subject).To(Equal("records." + ns + ".door"))
		g.Expect(rec.Status.Endpoint).To(Equal("http://door-recbuf." + ns + ".svc:8080/v1/records/door"))
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
	}, timeout, poll).Should(Succeed())

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "door-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElements(
		"--nats-url="+testConfig.NATSURL, "--nats-subject=records."+ns+".door", "--max-message-bytes=1048576"))
	g.Expect(d.Spec.Strategy.Type).To(Equal(appsv1.RecreateDeploymentStrategyType), "a Mailbox is never run twice")
}

// TestBufferPodsSpreadAcrossNodes: replicas of a Record on one node fall
// together with it, so the pods spread across nodes by default (softly:
// a one-node cluster still runs them all), and the Record's own
// spec.scheduling.topologySpreadConstraints replace the default.
func TestBufferPodsSpreadAcrossNodes(t *testing.T) {
	ring := recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSpmcRing, Capacity: ptr.To[int32](10)}
	byZone := []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/instance": "zoned"}},
	}}
	tests := []struct {
		name string
		spec recbufv1alpha1.RecordSpec
		want func(rec string) []corev1.TopologySpreadConstraint
	}{
		{"the pods of a Record without scheduling spread across nodes", recbufv1alpha1.RecordSpec{Buffer: ring, Replicas: ptr.To[int32](2)},
			func(rec string) []corev1.TopologySpreadConstraint {
				return []corev1.TopologySpreadConstraint{{
					MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
						"app.kubernetes.io/name": "recbuf-buffer", "app.kubernetes.io/instance": rec}},
					MatchLabelKeys: []string{appsv1.DefaultDeploymentUniqueLabelKey},
				}}
			}},
		{"a Record's own constraints replace the default", recbufv1alpha1.RecordSpec{Buffer: ring, Replicas: ptr.To[int32](2),
			Scheduling: &recbufv1alpha1.SchedulingSpec{TopologySpreadConstraints: byZone}},
			func(string) []corev1.TopologySpreadConstraint { return byZone }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := newNamespace(t)
			name := []string{"spread", "zoned"}[i]
			create(t, g, newRecord(ns, name, tt.spec))
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-recbuf"}}
			g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
			g.Expect(d.Spec.Template.Spec.TopologySpreadConstraints).To(Equal(tt.want(name)))
		})
	}
}

func TestAValidRecordYieldsItsDeploymentAndService(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "telemetry", recbufv1alpha1.RecordSpec{
		Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSpmcRing, Capacity: ptr.To[int32](100)},
		Source: &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{
			Subject: "devices.*.telemetry", QueueGroup: "buffers", URL: "tls://nats.example:4222",
			CredentialsSecretRef: &recbufv1alpha1.SecretReference{Name: "nats-creds"},
		}},
		MaxMessageBytes: ptr.To[int32](4096),
		Scheduling: &recbufv1alpha1.SchedulingSpec{
			NodeSelector: map[string]string{"edge": "true"},
			Tolerations:  []corev1.Toleration{{Key: "edge", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		},
	})
	create(t, g, rec)

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "telemetry-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	labels := map[string]string{
		"app.kubernetes.io/name": "recbuf-buffer", "app.kubernetes.io/instance": "telemetry",
		"app.kubernetes.io/managed-by": "recbuf-manager",
	}
	g.Expect(d.Labels).To(Equal(labels))
	g.Expect(d.Spec.Selector.MatchLabels).To(Equal(map[string]string{
		"app.kubernetes.io/name": "recbuf-buffer", "app.kubernetes.io/instance": "telemetry"}))
	g.Expect(d.Spec.Template.Labels).To(Equal(labels))
	g.Expect(*d.Spec.Replicas).To(Equal(int32(1)))
	g.Expect(d.Spec.Strategy.Type).To(Equal(appsv1.RollingUpdateDeploymentStrategyType))
	expectControlledBy(g, d, rec)

	ps := d.Spec.Template.Spec
	g.Expect(ps.Containers).To(HaveLen(1))
	c := ps.Containers[0]
	g.Expect(c.Image).To(Equal(testImage))
	g.Expect(c.ImagePullPolicy).To(Equal(corev1.PullNever))
	g.Expect(c.Args).To(Equal([]string{
		"--record-namespace=" + ns, "--record-name=telemetry", "--record-uid=" + string(rec.UID),
		"--buffer-type=SpmcRing", "--capacity=100",
		"--nats-url=tls://nats.example:4222", "--nats-subject=devices.*.telemetry", "--nats-queue-group=buffers",
		"--nats-credentials-dir=/etc/recbuf/nats", "--max-message-bytes=4096",
		"--http-addr=:8080", "--metrics-addr=:9090", "--report-settings-file=/etc/recbuf/settings/reports.json",
		"--report-key-file=/etc/recbuf/report-key/key", "--shutdown-grace=10s",
	}))
	g.Expect(c.Env).To(ConsistOf(corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
		corev1.EnvVar{Name: "MEMORY_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
			ContainerName: "buffer", Resource: "limits.memory", Divisor: resource.MustParse("1")}}}))
	g.Expect(c.Ports).To(ConsistOf(
		corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		corev1.ContainerPort{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}))
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.LivenessProbe.HTTPGet.Port).To(Equal(intstr.FromString("metrics")))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(c.ReadinessProbe.HTTPGet.Port).To(Equal(intstr.FromString("metrics")))
	// 100 values of 4 KiB, 100 slots, the intake queue and the process:
	// 72.4 MiB at worst, 32.4 MiB once full (internal/sizing).
	g.Expect(c.Resources.Requests.Memory().String()).To(Equal("41Mi"))
	g.Expect(c.Resources.Limits.Memory().String()).To(Equal("91Mi"))
	g.Expect(c.Resources.Requests.Cpu().String()).To(Equal("10m"))
	g.Expect(c.SecurityContext).To(Equal(&corev1.SecurityContext{
		RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}))
	g.Expect(c.VolumeMounts).To(ConsistOf(
		corev1.VolumeMount{Name: "settings", MountPath: "/etc/recbuf/settings", ReadOnly: true},
		corev1.VolumeMount{Name: "nats-credentials", MountPath: "/etc/recbuf/nats", ReadOnly: true},
		corev1.VolumeMount{Name: "report-key", MountPath: "/etc/recbuf/report-key", ReadOnly: true}))
	g.Expect(ps.Volumes).To(HaveLen(3))
	g.Expect(ps.Volumes[0].ConfigMap.Name).To(Equal("telemetry-recbuf"), "the settings ConfigMap")
	g.Expect(*ps.Volumes[0].ConfigMap.Optional).To(BeTrue())
	g.Expect(ps.Volumes[1].Secret.SecretName).To(Equal("nats-creds"))
	g.Expect(ps.Volumes[2].Secret.SecretName).To(Equal("telemetry-recbuf-report-key-" + report.MasterKeyFingerprint(testMasterKey)))

	// The report key: a Secret of the Record's, labelled as its children,
	// immutable, holding the 32-byte key derived for it.
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ps.Volumes[2].Secret.SecretName}}
	g.Eventually(func() error { return get(key) }, timeout, poll).Should(Succeed())
	g.Expect(key.Labels).To(Equal(labels))
	g.Expect(key.Data).To(HaveKeyWithValue("key", HaveLen(32)))
	g.Expect(key.Data).To(HaveKeyWithValue("key", report.DeriveKey(testMasterKey, ns, "telemetry", string(rec.UID))))
	g.Expect(key.Immutable).To(Equal(ptr.To(true)))
	expectControlledBy(g, key, rec)
	g.Expect(*ps.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(ps.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	g.Expect(*ps.AutomountServiceAccountToken).To(BeFalse())
	g.Expect(*ps.TerminationGracePeriodSeconds).To(Equal(int64(15)))
	g.Expect(ps.NodeSelector).To(Equal(map[string]string{"edge": "true"}))
	g.Expect(ps.Tolerations).To(Equal(rec.Spec.Scheduling.Tolerations))

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "telemetry-recbuf"}}
	g.Eventually(func() error { return get(svc) }, timeout, poll).Should(Succeed())
	g.Expect(svc.Labels).To(Equal(labels))
	g.Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
	g.Expect(svc.Spec.Selector).To(Equal(d.Spec.Selector.MatchLabels))
	g.Expect(svc.Spec.Ports).To(ConsistOf(
		corev1.ServicePort{Name: "http", Port: 8080, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP}))
	expectControlledBy(g, svc, rec)

	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Endpoint).To(Equal("http://telemetry-recbuf." + ns + ".svc:8080/v1/records/telemetry"))
		g.Expect(rec.Status.Subject).To(Equal("devices.*.telemetry"))
	}, timeout, poll).Should(Succeed())

	// The API server's defaults do not make the children differ from what
	// the reconciler wants: an unchanged Record causes no update.
	wantD := d.DeepCopy()
	g.Expect(controllerutil.SetControllerReference(rec, wantD, k8s.Scheme())).To(Succeed())
	mutateDeployment(wantD, rec, testConfig)
	g.Expect(equality.Semantic.DeepEqual(wantD, d)).To(BeTrue(), "the stored Deployment differs from the desired one")
	wantS := svc.DeepCopy()
	g.Expect(controllerutil.SetControllerReference(rec, wantS, k8s.Scheme())).To(Succeed())
	mutateService(wantS, rec)
	g.Expect(equality.Semantic.DeepEqual(wantS, svc)).To(BeTrue(), "the stored Service differs from the desired one")
}

func expectControlledBy(g Gomega, obj metav1.Object, rec *recbufv1alpha1.Record) {
	g.Expect(obj.GetOwnerReferences()).To(ConsistOf(metav1.OwnerReference{
		APIVersion: "recbuf.dev/v1alpha1", Kind: "Record", Name: rec.Name, UID: rec.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}))
}

func TestASpecChangeRollsOut(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "ring", ringSpec(100))
	create(t, g, rec)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ring-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())

	update(g, rec, func(rec *recbufv1alpha1.Record) {
		rec.Spec.Buffer.Capacity = ptr.To[int32](200)
		rec.Spec.Replicas = ptr.To[int32](3)
		rec.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	})

	g.Eventually(func(g Gomega) {
		g.Expect(get(d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(Equal(int32(3)))
		c := d.Spec.Template.Spec.Containers[0]
		g.Expect(c.Args).To(ContainElement("--capacity=200"))
		g.Expect(c.Args).NotTo(ContainElement("--capacity=100"))
		g.Expect(c.Resources.Limits.Memory().String()).To(Equal("1Gi"))
		g.Expect(c.Resources.Requests).To(BeEmpty(), "spec.resources replaces the defaults")
	}, timeout, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
	}, timeout, poll).Should(Succeed())

	// Scaled to zero, the Record says nothing serves it.
	update(g, rec, func(rec *recbufv1alpha1.Record) { rec.Spec.Replicas = ptr.To[int32](0) })
	g.Eventually(func(g Gomega) {
		g.Expect(get(d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(Equal(int32(0)))
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonScaledToZero)
	}, timeout, poll).Should(Succeed())
}

func TestDriftIsReverted(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "state", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}})
	create(t, g, rec)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "state-recbuf"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "state-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	g.Eventually(func() error { return get(svc) }, timeout, poll).Should(Succeed())
	want := d.Spec.Template.Spec.Containers[0].DeepCopy()

	update(g, d, func(d *appsv1.Deployment) {
		c := &d.Spec.Template.Spec.Containers[0]
		c.Image = "example.com/evil:latest"
		c.Args = append(c.Args, "--embedded-nats=0.0.0.0:4222")
		c.Env = append(c.Env, corev1.EnvVar{Name: "DEBUG", Value: "1"})
		c.SecurityContext = nil
		d.Spec.Replicas = ptr.To[int32](5)
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "shell", Image: "busybox"})
	})

	update(g, svc, func(svc *corev1.Service) {
		svc.Spec.Ports[0].Port = 80
		svc.Spec.Selector = map[string]string{"app": "other"}
		// Without this label the manager's cache no longer sees the Service.
		delete(svc.Labels, "app.kubernetes.io/managed-by")
	})

	g.Eventually(func(g Gomega) {
		g.Expect(get(d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(Equal(int32(1)))
		g.Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
		g.Expect(equality.Semantic.DeepEqual(&d.Spec.Template.Spec.Containers[0], want)).To(BeTrue(),
			"container not restored: %+v", d.Spec.Template.Spec.Containers[0])
	}, timeout, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(svc)).To(Succeed())
		g.Expect(svc.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "recbuf-manager"))
		g.Expect(svc.Spec.Ports[0].Port).To(Equal(int32(8080)))
		g.Expect(svc.Spec.Selector).To(Equal(map[string]string{
			"app.kubernetes.io/name": "recbuf-buffer", "app.kubernetes.io/instance": "state"}))
	}, timeout, poll).Should(Succeed())
}

func TestConditionsFollowTheDeployment(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "cond", ringSpec(10))
	create(t, g, rec)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cond-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionAvailable, metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable)
		expectCondition(g, rec, recbufv1alpha1.ConditionReconciling, metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut)
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable)
	}, timeout, poll).Should(Succeed())

	// The Deployment becomes available.
	setDeploymentStatus(t, g, d, 1, []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."},
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
	})
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionAvailable, metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable)
		expectCondition(g, rec, recbufv1alpha1.ConditionReconciling, metav1.ConditionFalse, recbufv1alpha1.ReasonUpToDate)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady)
		g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionReady).Message).To(Equal("1 of 1 buffer pods available"))
	}, timeout, poll).Should(Succeed())
	expectEvent(t, g, rec, corev1.EventTypeNormal, recbufv1alpha1.ReasonReady)

	// Pods fail to be created.
	setDeploymentStatus(t, g, d, 0, []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability."},
		{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: `pods "cond-recbuf-x" is forbidden: exceeded quota`},
	})
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonReplicaFailure)
		expectCondition(g, rec, recbufv1alpha1.ConditionReconciling, metav1.ConditionFalse, recbufv1alpha1.ReasonReplicaFailure)
		expectCondition(g, rec, recbufv1alpha1.ConditionAvailable, metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonReplicaFailure)
		g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionReady).Message).To(ContainSubstring("exceeded quota"))
	}, timeout, poll).Should(Succeed())
	expectEvent(t, g, rec, corev1.EventTypeWarning, recbufv1alpha1.ReasonReplicaFailure)

	// The rollout misses its deadline.
	setDeploymentStatus(t, g, d, 0, []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable"},
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "cond-recbuf-1" has timed out progressing.`},
	})
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonProgressDeadlineExceeded)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressDeadlineExceeded)
	}, timeout, poll).Should(Succeed())
}

// setDeploymentStatus writes d's status as the Deployment controller would
// (envtest runs none).
func setDeploymentStatus(t *testing.T, g Gomega, d *appsv1.Deployment, available int32, conds []appsv1.DeploymentCondition) {
	t.Helper()
	g.Eventually(func() error {
		if err := get(d); err != nil {
			return err
		}
		now := metav1.Now()
		for i := range conds {
			conds[i].LastUpdateTime, conds[i].LastTransitionTime = now, now
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation,
			Replicas:           *d.Spec.Replicas, UpdatedReplicas: *d.Spec.Replicas,
			ReadyReplicas: available, AvailableReplicas: available,
			UnavailableReplicas: *d.Spec.Replicas - available,
			Conditions:          conds,
		}
		return k8s.Status().Update(context.Background(), d)
	}, timeout, poll).Should(Succeed())
}

func expectCondition(g Gomega, rec *recbufv1alpha1.Record, condType string, status metav1.ConditionStatus, reason string) {
	c := meta.FindStatusCondition(rec.Status.Conditions, condType)
	g.Expect(c).NotTo(BeNil(), "condition %s", condType)
	g.Expect(c.Status).To(Equal(status), "condition %s: %s", condType, c.Message)
	g.Expect(c.Reason).To(Equal(reason), "condition %s: %s", condType, c.Message)
	g.Expect(c.ObservedGeneration).To(Equal(rec.Generation), "condition %s", condType)
}

// expectEvent waits for an Event about rec with this type and reason.
func expectEvent(t *testing.T, g Gomega, rec *recbufv1alpha1.Record, eventType, reason string) {
	t.Helper()
	g.Eventually(func(g Gomega) {
		var list eventsv1.EventList
		g.Expect(k8s.List(context.Background(), &list, client.InNamespace(rec.Namespace))).To(Succeed())
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.UID == rec.UID && e.Type == eventType && e.Reason == reason {
				return
			}
			seen = append(seen, e.Type+"/"+e.Reason)
		}
		g.Expect(seen).To(ContainElement(eventType + "/" + reason))
	}, timeout, poll).Should(Succeed())
}

func TestStatusIsNotRewrittenWhenNothingChanged(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "quiet", ringSpec(10))
	create(t, g, rec)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quiet-recbuf"}}
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
		g.Expect(rec.Status.Endpoint).NotTo(BeEmpty())
		g.Expect(get(svc)).To(Succeed())
	}, timeout, poll).Should(Succeed())

	key := client.ObjectKeyFromObject(rec)
	// poke makes the controller reconcile the Record (an annotation on its
	// Service, which it watches; annotations are not recbuf's to manage)
	// and waits until that reconcile has finished.
	poke := func(i int) {
		t.Helper()
		n := reconciles.get(key)
		g.Eventually(func() error {
			if err := get(svc); err != nil {
				return err
			}
			metav1.SetMetaDataAnnotation(&svc.ObjectMeta, "test.recbuf.dev/poke", string(rune('a'+i)))
			return k8s.Update(context.Background(), svc)
		}, timeout, poll).Should(Succeed())
		g.Eventually(func() int { return reconciles.get(key) }, timeout, poll).Should(BeNumerically(">", n))
	}
	poke(0) // settle whatever was in flight
	g.Expect(get(rec)).To(Succeed())
	before := rec.DeepCopy()
	for i := 1; i <= 3; i++ {
		poke(i)
	}
	g.Expect(get(rec)).To(Succeed())
	g.Expect(rec.ResourceVersion).To(Equal(before.ResourceVersion), "status rewritten: %+v", rec.Status)
	g.Expect(rec.ManagedFields).To(Equal(before.ManagedFields))
}

func TestANameTakenByAnotherObjectStallsTheRecord(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other func(ns string) client.Object
		kind  string
	}{
		{name: "a Service of the child's name stalls the Record and is not adopted", kind: "Service",
			other: func(ns string) client.Object {
				return &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken-recbuf"},
					Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
				}
			}},
		{name: "a NetworkPolicy of the child's name stalls the Record and is not adopted", kind: "NetworkPolicy",
			other: func(ns string) client.Object { return networkPolicyOf(ns, "taken") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := newNamespace(t)
			other := tc.other(ns)
			create(t, g, other)
			rec := newRecord(ns, "taken", ringSpec(10))
			create(t, g, rec)
			g.Eventually(func(g Gomega) {
				g.Expect(get(rec)).To(Succeed())
				expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonChildConflict)
				g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStalled).Message).
					To(Equal("a " + tc.kind + " named taken-recbuf exists that this Record does not manage: delete it, or rename the Record"))
			}, timeout, poll).Should(Succeed())
			expectEvent(t, g, rec, corev1.EventTypeWarning, recbufv1alpha1.ReasonChildConflict)

			g.Expect(get(other)).To(Succeed())
			g.Expect(other.GetOwnerReferences()).To(BeEmpty(), "the other %s was adopted", tc.kind)
		})
	}
}

func TestStatusCountersComeFromReports(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "counted", ringSpec(10))
	create(t, g, rec)

	lastMsg := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	rep := func(pod string, produced uint64) report.Report {
		return report.Report{
			Namespace: ns, Record: "counted", RecordUID: string(rec.UID), Pod: pod,
			Time: time.Now(),
			Counters: report.Counters{
				Produced: produced, Delivered: 2 * produced, Subscribers: 1, LagEvents: 1, LaggedValues: 4,
				Evicted: produced - 3, Overwrites: 0, Dropped: 1, LastMessageTime: lastMsg,
			},
		}
	}
	// Only the Record's current pods may report: they exist, pending.
	createPod(t, g, rec, "pod-a")
	createPod(t, g, rec, "pod-b")
	createPod(t, g, rec, "old-pod")
	stranger := rep("old-pod", 1000)
	stranger.RecordUID = "an-earlier-incarnation"
	g.Eventually(func(g Gomega) {
		// Sent until the manager has seen the pods and takes their reports.
		publishReport(t, rep("pod-a", 10))
		publishReport(t, rep("pod-b", 5))
		publishReport(t, stranger)
		g.Expect(get(rec)).To(Succeed())
		st := rec.Status
		g.Expect(st.ReportingPods).To(Equal(int32(2)))
		g.Expect(st.Produced).To(Equal(int64(10)), "each pod holds a copy: the Record took in what the fuller one did")
		g.Expect(st.Delivered).To(Equal(int64(30)))
		g.Expect(st.Subscribers).To(Equal(int64(2)))
		g.Expect(st.LagEvents).To(Equal(int64(2)))
		g.Expect(st.LaggedValues).To(Equal(int64(8)))
		g.Expect(st.Evicted).To(Equal(int64(7)), "the most a copy evicted")
		g.Expect(st.Dropped).To(Equal(int64(1)), "each copy dropped the same message")
		g.Expect(st.LastMessageTime.Time.Equal(lastMsg)).To(BeTrue(), "lastMessageTime %v, want %v", st.LastMessageTime, lastMsg)
		g.Expect(st.LastReportTime).NotTo(BeNil())
		expectCondition(g, rec, recbufv1alpha1.ConditionReporting, metav1.ConditionTrue, recbufv1alpha1.ReasonReportsFresh)
		expectCondition(g, rec, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionTrue, recbufv1alpha1.ReasonConnected)
	}, timeout, poll).Should(Succeed())

	// Reports of the Record's pods that do not run count for as long as
	// they are fresh. A running pod that goes silent is
	// TestABufferPodCutOffFromNATSIsNamedDisconnected's.
	publishReport(t, rep("pod-a", 12))
	publishReport(t, rep("pod-b", 6))
	lastReport := time.Now()
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Produced).To(Equal(int64(12)))
		g.Expect(rec.Status.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{
			{Name: "pod-a", Connected: true, Produced: 12, Subscribers: 1, Dropped: 1},
			{Name: "pod-b", Connected: true, Produced: 6, Subscribers: 1, Dropped: 1},
		}))
	}, timeout, poll).Should(Succeed())

	// The reports stop: within report-stale-after (and a report interval) the
	// Record says so, and keeps the last counters.
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionReporting, metav1.ConditionFalse, recbufv1alpha1.ReasonStale)
		expectCondition(g, rec, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports)
		g.Expect(rec.Status.ReportingPods).To(Equal(int32(0)))
		// The last counters are kept, not zeroed. pod-a's report was
		// sent first and goes stale first: a status write between the two
		// (seen on a loaded machine) keeps pod-b's 6 alone.
		g.Expect(rec.Status.Produced).To(BeElementOf(int64(12), int64(6)))
	}, timeout, poll).Should(Succeed())
	if took := time.Since(lastReport); took < testStaleAfter {
		t.Errorf("got stale %v after the last report, want no sooner than report-stale-after (%v)", took, testStaleAfter)
	}
	expectEvent(t, g, rec, corev1.EventTypeWarning, recbufv1alpha1.ReasonStale)

	// Reports resume: fresh again.
	publishReport(t, rep("pod-a", 13))
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionReporting, metav1.ConditionTrue, recbufv1alpha1.ReasonReportsFresh)
		g.Expect(rec.Status.Produced).To(Equal(int64(13)), "a single pod's counters")
	}, timeout, poll).Should(Succeed())
}

func TestPodRecordMapsABufferPodToItsRecord(t *testing.T) {
	pod := func(l map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: l}}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []reconcile.Request
	}{
		{"a buffer pod maps to the Record named by its instance label",
			pod(map[string]string{LabelName: NameValue, LabelInstance: "door"}),
			[]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "door"}}}},
		{"a pod of another application maps to nothing",
			pod(map[string]string{LabelName: "other", LabelInstance: "door"}), nil},
		{"a buffer pod without an instance maps to nothing",
			pod(map[string]string{LabelName: NameValue}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := podRecord(context.Background(), tt.pod); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReportRequestsMapsAChangeToTheRecordsItConcerns(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	for _, name := range []string{"a", "b"} {
		create(t, g, newRecord(ns, name, ringSpec(2)))
	}
	toRequests := reportRequests(k8s)
	one := types.NamespacedName{Namespace: ns, Name: "a"}
	g.Expect(toRequests(context.Background(), statusagg.Change{Record: one})).To(
		Equal([]reconcile.Request{{NamespacedName: one}}), "a change of one Record enqueues that Record")
	g.Expect(toRequests(context.Background(), statusagg.Change{All: true})).To(ContainElements(
		reconcile.Request{NamespacedName: one},
		reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "b"}},
	), "a change of the collector's connection enqueues every Record")
}
