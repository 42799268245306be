package testenv

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer several goroutines may write to at once: a service's log, or a
// command's output, that a test reads while the service runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
