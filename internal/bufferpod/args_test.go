package bufferpod

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

func TestArgsOfAMinimalRecord(t *testing.T) {
	rec := newRecord("ns", "door", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}})
	rec.UID = "u"
	cfg := Config{NATSURL: "nats://nats:4222"}
	want := []string{
		"--record-namespace=ns", "--record-name=door", "--record-uid=u", "--buffer-type=Mailbox",
		"--nats-url=nats://nats:4222", "--nats-subject=records.ns.door", "--max-message-bytes=1048576",
		"--http-addr=:8080", "--metrics-addr=:9090", "--report-settings-file=/etc/recbuf/settings/reports.json",
		"--report-key-file=/etc/recbuf/report-key/key", "--shutdown-grace=10s",
	}
	if got := Args(rec, cfg, Own(rec)); !slices.Equal(got, want) {
		t.Errorf("got %q,\nwant %q", got, want)
	}
}

func TestArgsCarryTheConsumerLimitsOnlyWhenSet(t *testing.T) {
	rec := newRecord("ns", "door", ringSpec(8))
	cfg := Config{NATSURL: "nats://nats:4222"}
	if got := Args(rec, cfg, Own(rec)); slices.ContainsFunc(got, func(a string) bool {
		return strings.HasPrefix(a, "--max-streams") || strings.HasPrefix(a, "--max-takes")
	}) {
		t.Errorf("got %q: without spec.consumers limits, the buffer process's defaults apply", got)
	}
	rec.Spec.Consumers = &recbufv1alpha1.ConsumersSpec{MaxStreams: ptr.To[int32](2000), MaxTakes: ptr.To[int32](5)}
	got := Args(rec, cfg, Own(rec))
	for _, want := range []string{"--max-streams=2000", "--max-takes=5"} {
		if !slices.Contains(got, want) {
			t.Errorf("got %q, want %s among them", got, want)
		}
	}
}

func TestArgsCarryTheAllowedOriginsOnlyWhenSet(t *testing.T) {
	cfg := Config{NATSURL: "nats://nats:4222"}
	cases := []struct {
		name      string
		consumers *recbufv1alpha1.ConsumersSpec
		want      string // the flag, "" for none
	}{
		{name: "a Record without spec.consumers allows no origin", consumers: nil},
		{name: "a Record with an empty list allows no origin", consumers: &recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{}}},
		{name: "a Record's origins are passed as one comma-separated flag, in order",
			consumers: &recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"https://dash.example.com", "http://localhost:8080"}},
			want:      "--allowed-origins=https://dash.example.com,http://localhost:8080"},
		{name: "a Record that allows every origin passes *",
			consumers: &recbufv1alpha1.ConsumersSpec{AllowedOrigins: []recbufv1alpha1.Origin{"*"}}, want: "--allowed-origins=*"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecord("ns", "door", ringSpec(8))
			rec.Spec.Consumers = tc.consumers
			got := Args(rec, cfg, Own(rec))
			flags := slices.DeleteFunc(slices.Clone(got), func(a string) bool { return !strings.HasPrefix(a, "--allowed-origins") })
			switch {
			case tc.want == "" && len(flags) > 0:
				t.Errorf("got %q, want no --allowed-origins", flags)
			case tc.want != "" && !slices.Equal(flags, []string{tc.want}):
				t.Errorf("got %q, want [%s]", flags, tc.want)
			}
		})
	}
}
