package sidecar

import (
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/recbuf/recbuf/internal/report"
)

// reportKey is the report key of Config.ReportKeyFile. The kubelet
// replaces a mounted Secret's files when the Secret changes, so the file
// is read again before each report; a file that became unreadable keeps
// the last good key (and is logged), rather than sending unsigned reports.
type reportKey struct {
	path string

	mu  sync.Mutex
	key []byte
}

// load reads the key the first time; without a path there is no key.
func (k *reportKey) load(path string) error {
	if path == "" {
		return nil
	}
	key, err := readReportKey(path)
	if err != nil {
		return fmt.Errorf("%w: --report-key-file: %w", ErrInvalidConfig, err)
	}
	k.path, k.key = path, key
	return nil
}

// current returns the reporter's Key function: nil without a key file.
func (k *reportKey) current(log *slog.Logger) func() []byte {
	if k.path == "" {
		return nil
	}
	return func() []byte {
		k.mu.Lock()
		defer k.mu.Unlock()
		key, err := readReportKey(k.path)
		if err != nil {
			// Never the key itself: only why it could not be read.
			log.Warn("Report key not re-read; signing with the last one", "file", k.path, "error", err.Error())
			return k.key
		}
		k.key = key
		return key
	}
}

func readReportKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// The key's bytes are used as they are, whitespace included: the
	// manager derives the same raw bytes (report.DeriveKey), any of which
	// may be a space or a newline, so nothing is trimmed or counted out.
	if len(key) < report.MinKeySize {
		return nil, fmt.Errorf("report key in %s is shorter than %d bytes", path, report.MinKeySize)
	}
	return key, nil
}
