package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a service the driver started as a subprocess.
type Process struct {
	Name string
	URL  string // http://127.0.0.1:<port>
	Log  string // file with its stdout and stderr

	bin    string
	args   []string
	env    []string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	wanted bool // started and not stopped on purpose: an exit is a failure

	mu   sync.Mutex
	peak int64 // highest VmHWM seen, bytes, over every start of the process
}

// ErrProcessExited is returned when a service subprocess exited before it was ready or while
// it was needed.
var ErrProcessExited = errors.New("service process exited")

// start runs the binary and waits until its /readyz answers 200.
func (p *Process) start(ctx context.Context, readyWithin time.Duration) error {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C on the terminal reaches the driver alone and the
	// driver stops the services in order; Pdeathsig kills it should the driver die unclean.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.done, p.err, p.wanted = cmd, make(chan struct{}), nil, true
	go func(done chan struct{}) {
		p.err = cmd.Wait()
		logf.Close()
		close(done)
	}(p.done)
	if err := waitReady(ctx, p.URL+"/readyz", readyWithin, p.done); err != nil {
		_ = p.stop()
		return fmt.Errorf("%s not ready at %s: %w; last lines of %s:\n%s", p.Name, p.URL, err, p.Log, tail(p.Log, 20))
	}
	return nil
}

// Pid is the running process's id, 0 when stopped.
func (p *Process) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil || p.exited() {
		return 0
	}
	return p.cmd.Process.Pid
}

// PeakRSS returns the highest VmHWM of the process seen so far (sampled now if running).
func (p *Process) PeakRSS() int64 {
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

func (p *Process) sample() {
	if pid := p.Pid(); pid > 0 {
		if v := PeakRSS(pid); v > 0 {
			p.mu.Lock()
			p.peak = max(p.peak, v)
			p.mu.Unlock()
		}
	}
}

func (p *Process) exited() bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Alive reports an exit the driver did not ask for as an error naming the process's log; a
// process the driver stopped on purpose is not an error.
func (p *Process) Alive() error {
	if p.wanted && p.exited() {
		exit := p.err
		if exit == nil {
			exit = errors.New("exit status 0")
		}
		return fmt.Errorf("%w: %s (%w); last lines of %s:\n%s", ErrProcessExited, p.Name, exit, p.Log, tail(p.Log, 20))
	}
	return nil
}

// stop sends SIGTERM, waits for a graceful exit, and kills the process group after 15 s.
func (p *Process) stop() error {
	p.wanted = false
	if p.cmd == nil || p.exited() {
		return nil
	}
	p.sample()
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	// Anything the service left in its group goes too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return nil
}

// kill ends the process with SIGKILL, a crash as far as the service can tell (no drain, no
// unpin, a transaction in flight cut off), and waits until it is gone.
func (p *Process) kill() {
	p.wanted = false
	if p.cmd == nil || p.exited() {
		return
	}
	p.sample()
	pid := p.cmd.Process.Pid
	// The whole group (the service's own, see start), so nothing of it outlives the kill.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// waitReady polls url until it answers 200, the deadline passes, or exited closes.
func waitReady(ctx context.Context, url string, within time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-exited:
			return ErrProcessExited
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// buildService compiles ./cmd/<name> into dir; it reports false when the package does not
// exist (yet) in the tree.
func buildService(ctx context.Context, repo, dir, name string) (bool, error) {
	if st, err := os.Stat(filepath.Join(repo, "cmd", name)); err != nil || !st.IsDir() {
		return false, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return true, fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, strings.TrimSpace(string(out)))
	}
	return true, nil
}
