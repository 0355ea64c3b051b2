package sidecar_test

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/consumerauth"
)

func TestParseRecordSpec(t *testing.T) {
	cases := []struct {
		name    string
		spec    string
		want    sidecar.RecordConfig
		wantErr bool
	}{
		{name: "a ring names its capacity", spec: "telemetry=SpmcRing:1024@devices.telemetry",
			want: sidecar.RecordConfig{Name: "telemetry", Type: buffer.TypeSpmcRing, Capacity: 1024, Subject: "devices.telemetry"}},
		{name: "type names ignore case", spec: "state=singlelatest@devices.state",
			want: sidecar.RecordConfig{Name: "state", Type: buffer.TypeSingleLatest, Subject: "devices.state"}},
		{name: "subjects may hold wildcards", spec: "cmd=Mailbox@devices.*.cmd",
			want: sidecar.RecordConfig{Name: "cmd", Type: buffer.TypeMailbox, Subject: "devices.*.cmd"}},
		{name: "a spec without '=' is refused", spec: "telemetry", wantErr: true},
		{name: "a spec without a subject is refused", spec: "t=Mailbox", wantErr: true},
		{name: "a spec with an empty subject is refused", spec: "t=Mailbox@", wantErr: true},
		{name: "a ring without a capacity is refused", spec: "t=SpmcRing@s", wantErr: true},
		{name: "a capacity that is not a number is refused", spec: "t=SpmcRing:many@s", wantErr: true},
		{name: "a capacity on a single-slot type is refused", spec: "t=Mailbox:4@s", wantErr: true},
		{name: "an unknown type is refused", spec: "t=Queue@s", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sidecar.ParseRecordSpec(tc.spec)
			if tc.wantErr {
				if !errors.Is(err, sidecar.ErrInvalidConfig) {
					t.Errorf("got %+v, %v, want ErrInvalidConfig", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v, want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c sidecar.Config)
		wantErr error
	}{
		{
			name: "the manager's flags make one record",
			args: []string{"--record-namespace", "prod", "--record-name", "telemetry", "--record-uid", "u-1",
				"--buffer-type", "SpmcRing", "--capacity", "64", "--nats-url", "nats://nats:4222",
				"--nats-subject", "devices.telemetry", "--nats-queue-group", "g", "--max-message-bytes", "2048",
				"--http-addr", ":8081", "--metrics-addr", ":9091", "--report-interval", "7s",
				"--report-subject-prefix", "x.stats", "--shutdown-grace", "3s", "--buffer-max-bytes", "65536"},
			env: map[string]string{"POD_NAME": "telemetry-recbuf-abc", "MEMORY_LIMIT": "147849216"},
			check: func(t *testing.T, c sidecar.Config) {
				want := sidecar.RecordConfig{Namespace: "prod", Name: "telemetry", UID: "u-1", Type: buffer.TypeSpmcRing,
					Capacity: 64, MaxBytes: 65536, Subject: "devices.telemetry", QueueGroup: "g"}
				if c.MemoryLimit != 147849216 {
					t.Errorf("got memory limit %d, want MEMORY_LIMIT's 147849216", c.MemoryLimit)
				}
				if len(c.Records) != 1 || c.Records[0] != want {
					t.Errorf("got records %+v, want [%+v]", c.Records, want)
				}
				if c.Pod != "telemetry-recbuf-abc" || c.NATS.URL != "nats://nats:4222" || c.MaxMessageBytes != 2048 ||
					c.HTTPAddr != ":8081" || c.MetricsAddr != ":9091" || c.ReportInterval.String() != "7s" ||
					c.ReportSubjectPrefix != "x.stats" || c.ShutdownGrace.String() != "3s" {
					t.Errorf("got config %+v", c)
				}
			},
		},
		{
			name: "--jetstream-stream makes the record durable in that stream",
			args: []string{"--record-name", "telemetry", "--buffer-type", "SpmcRing", "--capacity", "8", "--jetstream-stream", "recbuf_default_telemetry"},
			check: func(t *testing.T, c sidecar.Config) {
				if r := c.Records[0]; r.Stream != "recbuf_default_telemetry" {
					t.Errorf("got stream %q, want recbuf_default_telemetry", r.Stream)
				}
			},
		},
		{name: "--jetstream-stream is refused with standalone records",
			args: []string{"--embedded-nats", "127.0.0.1:0", "--record", "a=Mailbox@x", "--jetstream-stream", "s"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "--jetstream-stream is refused with a queue group",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--jetstream-stream", "s", "--nats-queue-group", "q"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "a stream name with a dot is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--jetstream-stream", "a.b"}, wantErr: sidecar.ErrInvalidConfig},
		{
			name: "the subject defaults to records.<namespace>.<name> and capacity is ignored off rings",
			args: []string{"--record-name", "state", "--buffer-type", "SingleLatest", "--capacity", "5"},
			check: func(t *testing.T, c sidecar.Config) {
				r := c.Records[0]
				if r.Subject != "records.default.state" || r.Capacity != 0 || r.Namespace != "default" {
					t.Errorf("got record %+v, want subject records.default.state, capacity 0", r)
				}
			},
		},
		{
			name: "--pod-name wins over POD_NAME",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--pod-name", "p1"},
			env:  map[string]string{"POD_NAME": "p2"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.Pod != "p1" {
					t.Errorf("got pod %q, want p1", c.Pod)
				}
			},
		},
		{
			name: "standalone records share the namespace and queue group",
			args: []string{"--embedded-nats", "127.0.0.1:0", "--nats-queue-group", "q",
				"--record", "a=Mailbox@x", "--record", "b=SpmcRing:2@y"},
			check: func(t *testing.T, c sidecar.Config) {
				if len(c.Records) != 2 || c.Records[1].Capacity != 2 || c.Records[0].QueueGroup != "q" || c.EmbeddedNATS != "127.0.0.1:0" {
					t.Errorf("got %+v", c.Records)
				}
			},
		},
		{
			name: "--memory-limit wins over MEMORY_LIMIT, and a byte budget applies to the rings only",
			args: []string{"--record", "a=Mailbox@x", "--record", "b=SpmcRing:2@y", "--buffer-max-bytes", "2097152", "--memory-limit", "1000"},
			env:  map[string]string{"MEMORY_LIMIT": "2000"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.MemoryLimit != 1000 || c.Records[0].MaxBytes != 0 || c.Records[1].MaxBytes != 2<<20 {
					t.Errorf("got memory limit %d and records %+v, want 1000 and a budget of 2 MiB on b only", c.MemoryLimit, c.Records)
				}
			},
		},
		{name: "a byte budget below the largest message is refused",
			args: []string{"--record-name", "a", "--buffer-type", "SpmcRing", "--capacity", "8", "--buffer-max-bytes", "1000"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "a memory limit that is not a number of bytes is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox"}, env: map[string]string{"MEMORY_LIMIT": "1Gi"}, wantErr: sidecar.ErrInvalidConfig},
		{
			name: "the consumer caps default to the consumer API's",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.MaxStreams != consumerapi.DefaultMaxStreams || c.MaxTakes != consumerapi.DefaultMaxTakes {
					t.Errorf("got caps %d streams, %d takes, want %d and %d", c.MaxStreams, c.MaxTakes, consumerapi.DefaultMaxStreams, consumerapi.DefaultMaxTakes)
				}
			},
		},
		{
			name: "--max-streams and --max-takes set the consumer caps",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--max-streams", "10", "--max-takes", "3"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.MaxStreams != 10 || c.MaxTakes != 3 {
					t.Errorf("got caps %d streams, %d takes, want 10 and 3", c.MaxStreams, c.MaxTakes)
				}
			},
		},
		{
			name: "the request caps default to the consumer API's",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox"},
			check: func(t *testing.T, c sidecar.Config) {
				// 0: derived from the stream and take caps by the consumer API.
				if c.MaxRequests != 0 || c.MaxRequestsPerClient != consumerapi.DefaultMaxRequestsPerClient {
					t.Errorf("got caps %d requests, %d per client, want 0 and %d", c.MaxRequests, c.MaxRequestsPerClient, consumerapi.DefaultMaxRequestsPerClient)
				}
			},
		},
		{
			name: "--max-requests and --max-requests-per-client set the request caps",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--max-requests", "100", "--max-requests-per-client", "7"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.MaxRequests != 100 || c.MaxRequestsPerClient != 7 {
					t.Errorf("got caps %d requests, %d per client, want 100 and 7", c.MaxRequests, c.MaxRequestsPerClient)
				}
			},
		},
		{
			name: "the report settings file and its poll are taken",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox",
				"--report-settings-file", "/etc/recbuf/settings/reports.json", "--settings-poll", "2s"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.ReportSettingsFile != "/etc/recbuf/settings/reports.json" || c.SettingsPoll != 2*time.Second {
					t.Errorf("got file %q, poll %s", c.ReportSettingsFile, c.SettingsPoll)
				}
			},
		},
		{
			name: "consumers are not authenticated by default",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.ConsumerAuthentication != consumerauth.ModeNone {
					t.Errorf("got consumer authentication %q, want None", c.ConsumerAuthentication)
				}
			},
		},
		{
			name: "--consumer-authentication asks consumers for ServiceAccount tokens",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--consumer-authentication", "ServiceAccountToken"},
			check: func(t *testing.T, c sidecar.Config) {
				if c.ConsumerAuthentication != consumerauth.ModeServiceAccountToken {
					t.Errorf("got consumer authentication %q, want ServiceAccountToken", c.ConsumerAuthentication)
				}
			},
		},
		{
			name: "no origin is allowed by default",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox"},
			check: func(t *testing.T, c sidecar.Config) {
				if len(c.AllowedOrigins) != 0 {
					t.Errorf("got allowed origins %q, want none", c.AllowedOrigins)
				}
			},
		},
		{
			name: "--allowed-origins takes a comma-separated list of origins",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--allowed-origins", "https://dash.example.com,http://localhost:8080",
				"--consumer-authentication", "ServiceAccountToken"},
			check: func(t *testing.T, c sidecar.Config) {
				if want := []string{"https://dash.example.com", "http://localhost:8080"}; !slices.Equal(c.AllowedOrigins, want) {
					t.Errorf("got allowed origins %q, want %q", c.AllowedOrigins, want)
				}
			},
		},
		{
			name: "--allowed-origins=* allows every origin without authentication",
			args: []string{"--record", "a=Mailbox@x", "--allowed-origins", "*"},
			check: func(t *testing.T, c sidecar.Config) {
				if want := []string{"*"}; !slices.Equal(c.AllowedOrigins, want) {
					t.Errorf("got allowed origins %q, want %q", c.AllowedOrigins, want)
				}
			},
		},
		{name: "--allowed-origins=* is refused with authentication",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--allowed-origins", "*", "--consumer-authentication", "ServiceAccountToken"}, wantErr: consumerapi.ErrInvalidOrigin},
		{name: "an allowed origin with a path is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--allowed-origins", "https://dash.example.com/app"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "an empty entry in --allowed-origins is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--allowed-origins", "https://dash.example.com,"}, wantErr: consumerapi.ErrInvalidOrigin},
		{name: "an unknown consumer authentication is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--consumer-authentication", "Basic"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "a wildcard report prefix is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--report-subject-prefix", "recbuf.>"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "no record is refused", args: nil, wantErr: sidecar.ErrInvalidConfig},
		{name: "--record and --record-name together are refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--record", "b=Mailbox@x"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "two records of one name are refused",
			args: []string{"--record", "a=Mailbox@x", "--record", "a=Mailbox@y"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "a record name unfit for a URL path is refused",
			args: []string{"--record", "a/b=Mailbox@x"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "a ring of capacity 0 is refused",
			args: []string{"--record-name", "a", "--buffer-type", "SpmcRing"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "an unknown buffer type is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Stack"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "an unknown log level is refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "--log-level", "loud"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "stray arguments are refused",
			args: []string{"--record-name", "a", "--buffer-type", "Mailbox", "extra"}, wantErr: sidecar.ErrInvalidConfig},
		{name: "-h asks for help", args: []string{"-h"}, wantErr: flag.ErrHelp},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := sidecar.ParseFlags(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestValidateBufferTypes(t *testing.T) {
	cases := []struct {
		name    string
		typ     buffer.Type
		wantErr bool
	}{
		{name: "a type spelt as in the Record API is accepted", typ: buffer.TypeMailbox},
		{name: "a type spelt in another case is refused, as the Record API refuses it", typ: "mailbox", wantErr: true},
		{name: "an unknown type is refused", typ: "Stack", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := sidecar.Config{
				Records: []sidecar.RecordConfig{{Name: "a", Type: tc.typ, Subject: "s"}},
				NATS:    sidecar.NATSConfig{URL: "nats://127.0.0.1:4222"},
			}
			err := c.Validate()
			refused := errors.Is(err, sidecar.ErrInvalidConfig) && errors.Is(err, buffer.ErrUnknownType)
			switch {
			case tc.wantErr && !refused:
				t.Fatalf("got %v, want an error wrapping ErrInvalidConfig and buffer.ErrUnknownType", err)
			case !tc.wantErr && err != nil:
				t.Fatalf("got %v, want none", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	ring := sidecar.RecordConfig{Name: "a", Type: buffer.TypeSpmcRing, Subject: "s"} // no capacity
	cases := []struct {
		name  string
		check func() error
		want  []string
	}{
		{
			name: "a config with three mistakes reports all three, each naming its flag",
			check: func() error {
				return sidecar.Config{
					Records: []sidecar.RecordConfig{ring}, NATS: sidecar.NATSConfig{URL: "nats://127.0.0.1:4222"},
					ConsumerAuthentication: "Basic", ReportSubjectPrefix: "recbuf.>",
				}.Validate()
			},
			want: []string{"--capacity 0", `--consumer-authentication "Basic"`, "--report-subject-prefix"},
		},
		{
			name: "a command line with three mistakes reports all three",
			check: func() error {
				_, err := sidecar.ParseFlags([]string{"--record-name", "a", "--buffer-type", "SpmcRing",
					"--nats-subject", "a b", "--embedded-mqtt", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
				return err
			},
			want: []string{"--capacity 0", `--nats-subject "a b"`, "--embedded-mqtt needs"},
		},
		{
			name: "mistakes in two records are reported for each",
			check: func() error {
				b := ring
				b.Name = "b"
				return sidecar.Config{Records: []sidecar.RecordConfig{ring, b}, EmbeddedNATS: "127.0.0.1:0"}.Validate()
			},
			want: []string{`record "a": --capacity 0`, `record "b": --capacity 0`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check()
			if !errors.Is(err, sidecar.ErrInvalidConfig) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to report %q", err, w)
				}
			}
			if got := len(strings.Split(err.Error(), "\n")); got != len(tc.want) {
				t.Errorf("got %d problems in %q, want %d", got, err, len(tc.want))
			}
		})
	}
}

func TestCompleteFillsInWhatValidateLeavesZero(t *testing.T) {
	c := sidecar.Config{Records: []sidecar.RecordConfig{{Name: "a", Type: buffer.TypeMailbox, Subject: "s"}}, EmbeddedNATS: "127.0.0.1:0"}
	if err := c.Validate(); err != nil {
		t.Fatalf("got %v for a config with its defaults left zero, want none", err)
	}
	c.Complete()
	if err := c.Validate(); err != nil {
		t.Fatalf("got %v after Complete, want none", err)
	}
	if c.HTTPAddr != sidecar.DefaultHTTPAddr || c.ConsumerAuthentication != consumerauth.ModeNone || c.ShutdownGrace != sidecar.DefaultShutdownGrace || c.Logger == nil {
		t.Errorf("got %+v, want the defaults filled in", c)
	}
}
