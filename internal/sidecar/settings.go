package sidecar

// This file follows the report settings file (Config.ReportSettingsFile):
// in a cluster, the Record's ConfigMap as the kubelet mounts it. The
// manager writes its report settings there instead of into the pod
// template, so that changing them restarts no buffer pod; the kubelet
// replaces the mounted file atomically within about a minute of the
// ConfigMap's change, and the buffer process re-reads it every
// Config.SettingsPoll and hands a change to its reporter.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/reporter"
)

// settingsFile reads the report settings file. It is used by one goroutine
// at a time.
type settingsFile struct {
	path string
	log  *slog.Logger
	// last is the content last read and applied (nil: none); lastErr is
	// the last problem logged. Each content and each problem is logged
	// once, not once per poll.
	last    []byte
	lastErr string
}

// read returns the file's settings when its content changed since the last
// successful read and is valid. A missing, unreadable or invalid file
// leaves the settings in force: ok is false, and the problem is logged once.
func (f *settingsFile) read() (_ report.Settings, ok bool) {
	data, err := os.ReadFile(f.path)
	if err == nil && bytes.Equal(data, f.last) {
		return report.Settings{}, false
	}
	var st report.Settings
	if err == nil {
		err = decodeSettings(data, &st)
	}
	if err != nil {
		// Read again once the problem is gone, even if the content is the
		// one applied before it.
		f.last = nil
		if msg := err.Error(); msg != f.lastErr {
			f.lastErr = msg
			if errors.Is(err, fs.ErrNotExist) {
				f.log.Info("No report settings file; keeping the report settings in force", "file", f.path)
			} else {
				f.log.Warn("Report settings file refused; keeping the report settings in force", "file", f.path, "error", msg)
			}
		}
		return report.Settings{}, false
	}
	f.last, f.lastErr = data, ""
	return st, true
}

// decodeSettings parses and checks the file's content.
func decodeSettings(data []byte, st *report.Settings) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(st); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return st.Validate()
}

// followSettings re-reads the settings file every poll until ctx ends, and
// applies each change to rep.
func followSettings(ctx context.Context, f *settingsFile, poll time.Duration, rep *reporter.Reporter) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, ok := f.read()
		if !ok || st == rep.Settings() {
			continue
		}
		was := rep.Settings()
		rep.Apply(st)
		f.log.Info("Report settings applied",
			"interval", time.Duration(st.Interval).String(), "subjectPrefix", st.SubjectPrefix,
			"previousInterval", time.Duration(was.Interval).String(), "previousSubjectPrefix", was.SubjectPrefix)
	}
}
