package edgesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// DeviceToken is replaced by the device name in a subject, e.g.
// "devices.{device}.telemetry".
const DeviceToken = "{device}"

// Config says what to publish.
type Config struct {
	// TelemetrySubject, StateSubject and CommandSubject are the subjects of
	// the three streams; an empty one is not published. Each may contain
	// DeviceToken.
	TelemetrySubject string
	StateSubject     string
	CommandSubject   string
	// Devices is the number of simulated devices (<= 0: 1). Messages go to
	// them in turn.
	Devices int
	// DevicePrefix starts the device names, PREFIX-001, PREFIX-002, ...
	// ("": DefaultDevicePrefix). Simulators publishing to the same subjects
	// at once need different prefixes: devices of the same name would
	// interleave their device sequences, which reads as restarts and gaps.
	// It is a subject token when a subject contains DeviceToken, so it must
	// not contain '.', '*', '>' or white space.
	DevicePrefix string
	// Rate is messages per second per stream, over all devices (<= 0: as
	// fast as possible).
	Rate float64
	// Count is messages per stream (0: until the context ends).
	Count uint64
	// Pad adds a string of this many bytes to each telemetry reading, to
	// try larger payloads.
	Pad int
	// Seed makes the readings reproducible.
	Seed uint64
}

// flushTimeout bounds the wait for the server to confirm what was published.
const flushTimeout = 10 * time.Second

// Stream names, the keys of Result.
const (
	StreamTelemetry = "telemetry"
	StreamState     = "state"
	StreamCommand   = "command"
)

// Result counts the messages published per stream.
type Result map[string]uint64

// DefaultDevicePrefix is the device name prefix when Config has none.
const DefaultDevicePrefix = "dev"

// ErrInvalidDevicePrefix is returned by Run for a DevicePrefix that cannot
// be a subject token.
var ErrInvalidDevicePrefix = errors.New("invalid device prefix")

// DeviceName is the name of device i (0-based) with the given prefix:
// dev-001, dev-002, ... for the prefix "dev".
func DeviceName(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i+1) }

// Run publishes on nc until every stream has published Count messages (and
// nc flushed them) or ctx ends. It returns what was published; the error
// is ctx's or a publishing failure.
func Run(ctx context.Context, nc *nats.Conn, cfg Config) (Result, error) {
	return RunOn(ctx, NATSPublisher{Conn: nc}, cfg)
}

// RunOn is Run with any Publisher, such as an MQTTPublisher.
func RunOn(ctx context.Context, p Publisher, cfg Config) (Result, error) {
	if cfg.Devices <= 0 {
		cfg.Devices = 1
	}
	if cfg.DevicePrefix == "" {
		cfg.DevicePrefix = DefaultDevicePrefix
	}
	if strings.ContainsAny(cfg.DevicePrefix, ".*>/+# \t\r\n") {
		return Result{}, fmt.Errorf("%w %q: a subject token or MQTT topic level has no '.', '*', '>', '/', '+', '#' or white space", ErrInvalidDevicePrefix, cfg.DevicePrefix)
	}
	type stream struct {
		name    string
		subject string
		payload func(d *device, seq uint64, now time.Time) any
	}
	var streams []stream
	if cfg.TelemetrySubject != "" {
		streams = append(streams, stream{StreamTelemetry, cfg.TelemetrySubject, telemetry(cfg.Pad)})
	}
	if cfg.StateSubject != "" {
		streams = append(streams, stream{StreamState, cfg.StateSubject, state})
	}
	if cfg.CommandSubject != "" {
		streams = append(streams, stream{StreamCommand, cfg.CommandSubject, command})
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	counts := make([]atomic.Uint64, len(streams))
	for i, st := range streams {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		devices := make([]*device, cfg.Devices)
		for d := range devices {
			devices[d] = newDevice(DeviceName(cfg.DevicePrefix, d), rng)
		}
		wg.Go(func() {
			err := publish(ctx, p, cfg, st.subject, devices, st.payload, &counts[i])
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s stream: %w", st.name, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res := Result{}
	for i, st := range streams {
		res[st.name] = counts[i].Load()
	}
	if firstErr != nil {
		return res, firstErr
	}
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		return res, fmt.Errorf("flush: %w", err)
	}
	return res, nil
}

func publish(ctx context.Context, p Publisher, cfg Config, subject string, devices []*device,
	payload func(*device, uint64, time.Time) any, count *atomic.Uint64) error {
	start := time.Now()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n := uint64(0); cfg.Count == 0 || n < cfg.Count; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(n) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
		}
		d := devices[n%uint64(len(devices))]
		d.seq++
		seq := d.seq
		data, err := json.Marshal(payload(d, seq, time.Now().UTC()))
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		if err := p.Publish(ctx, strings.ReplaceAll(subject, DeviceToken, d.name), d.name, seq, data); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		count.Add(1)
	}
	return nil
}

// device is one simulated device's state, a slow random walk.
type device struct {
	name        string
	rng         *rand.Rand
	seq         uint64
	temperature float64
	humidity    float64
	battery     float64
	uptime      time.Time
}

func newDevice(name string, rng *rand.Rand) *device {
	return &device{
		name:        name,
		rng:         rng,
		temperature: 18 + 6*rng.Float64(),
		humidity:    35 + 20*rng.Float64(),
		battery:     3.6 + 0.5*rng.Float64(),
		uptime:      time.Now(),
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// Telemetry is one sensor reading.
type Telemetry struct {
	Device      string    `json:"device"`
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Temperature float64   `json:"temperature"`
	Humidity    float64   `json:"humidity"`
	Battery     float64   `json:"battery"`
	Pad         string    `json:"pad,omitempty"`
}

func telemetry(pad int) func(*device, uint64, time.Time) any {
	padding := strings.Repeat("x", max(pad, 0))
	return func(d *device, seq uint64, now time.Time) any {
		d.temperature += d.rng.NormFloat64() * 0.1
		d.humidity = min(max(d.humidity+d.rng.NormFloat64()*0.3, 0), 100)
		d.battery = max(d.battery-0.0001, 3.0)
		return Telemetry{
			Device: d.name, Seq: seq, Time: now,
			Temperature: round(d.temperature, 2), Humidity: round(d.humidity, 1), Battery: round(d.battery, 3),
			Pad: padding,
		}
	}
}

// State is a device's current state.
type State struct {
	Device        string    `json:"device"`
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"`
	State         string    `json:"state"`
	Firmware      string    `json:"firmware"`
	UptimeSeconds int64     `json:"uptimeSeconds"`
}

var states = []string{"online", "idle", "charging", "updating"}

func state(d *device, seq uint64, now time.Time) any {
	return State{
		Device: d.name, Seq: seq, Time: now,
		State: states[d.rng.IntN(len(states))], Firmware: "1.4.2",
		UptimeSeconds: int64(now.Sub(d.uptime).Seconds()),
	}
}

// Command is an instruction for a device.
type Command struct {
	Device  string         `json:"device"`
	Seq     uint64         `json:"seq"`
	Time    time.Time      `json:"time"`
	Command string         `json:"command"`
	Args    map[string]int `json:"args,omitempty"`
}

func command(d *device, seq uint64, now time.Time) any {
	c := Command{Device: d.name, Seq: seq, Time: now}
	switch d.rng.IntN(3) {
	case 0:
		c.Command, c.Args = "set-interval", map[string]int{"seconds": 5 + d.rng.IntN(56)}
	case 1:
		c.Command = "reboot"
	default:
		c.Command, c.Args = "set-led", map[string]int{"brightness": d.rng.IntN(101)}
	}
	return c
}
