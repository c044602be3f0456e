package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The fault-injection suite's grconnect processes: started from the built binary
// on an install, killed, stopped, their output kept with arrival times.

// grProc is one running "grconnect serve" process.
type grProc struct {
	name    string
	url     string
	cmd     *exec.Cmd
	log     *procLog
	done    chan struct{}
	err     error // what Wait returned; read after done
	started time.Time
}

// procLog keeps a process's output with the time each line arrived, and copies it
// to a file.
type procLog struct {
	mu      sync.Mutex
	text    strings.Builder
	lines   []timedLine
	partial []byte
	file    *os.File
}

type timedLine struct {
	at   time.Time
	text string
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.text.Write(p)
	if l.file != nil {
		l.file.Write(p)
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, timedLine{now, string(l.partial[:i])})
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// first returns the first line containing substr (case-insensitive) and when it came.
func (l *procLog) first(substr string) (timedLine, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	substr = strings.ToLower(substr)
	for _, line := range l.lines {
		if strings.Contains(strings.ToLower(line.text), substr) {
			return line, true
		}
	}
	return timedLine{}, false
}

// firstOf returns the first line containing any of substrs (case-insensitive).
func (l *procLog) firstOf(substrs ...string) (timedLine, bool) {
	var first timedLine
	found := false
	for _, s := range substrs {
		if line, ok := l.first(s); ok && (!found || line.at.Before(first.at)) {
			first, found = line, true
		}
	}
	return first, found
}

// count returns how many lines contain substr (case-insensitive).
func (l *procLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	substr = strings.ToLower(substr)
	n := 0
	for _, line := range l.lines {
		if strings.Contains(strings.ToLower(line.text), substr) {
			n++
		}
	}
	return n
}

// processEnv is the test's environment without any GRCONNECT_* setting.
func processEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRCONNECT_") {
			env = append(env, kv)
		}
	}
	return env
}

// spawn starts a serve process of the install on its address (or addr, when
// given as GRCONNECT_ADDR=… in extra), without waiting for it.
func (in *install) spawn(extra ...string) *grProc {
	h := in.h
	in.mu.Lock()
	in.nprocs++
	name := fmt.Sprintf("%s-%d", h.name, in.nprocs)
	in.mu.Unlock()
	addr := in.addr
	env := processEnv()
	for k, v := range in.env {
		env = append(env, k+"="+v)
	}
	env = append(env, in.settings...)
	for _, kv := range extra {
		if a, ok := strings.CutPrefix(kv, "GRCONNECT_ADDR="); ok {
			addr = a
		}
	}
	env = append(env, extra...)
	env = append(env, "GRCONNECT_ADDR="+addr)
	p := &grProc{name: name, url: "http://" + addr, log: &procLog{}, done: make(chan struct{}), started: time.Now()}
	logDir := h.dir
	if d := os.Getenv(faultsEnvLogs); d != "" {
		logDir = d
		os.MkdirAll(d, 0o755)
	}
	if f, err := os.Create(filepath.Join(logDir, name+".log")); err == nil {
		p.log.file = f
	}
	p.cmd = exec.Command(h.bin, "serve")
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		h.fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
		if p.log.file != nil {
			p.log.file.Close()
		}
	}()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	h.cleanup(func() { p.kill() })
	return p
}

// serve starts a serve process and waits until /readyz answers 200.
func (in *install) serve(extra ...string) *grProc {
	p := in.spawn(extra...)
	if err := p.waitReady(60 * time.Second); err != nil {
		in.h.fatalf("%v\n%s", err, tail(p.log.String(), 3000))
	}
	return p
}

// waitReady polls /readyz until it answers 200.
func (p *grProc) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if res, err := http.Get(p.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", p.name, p.err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v", p.name, limit)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// exited reports whether the process has ended.
func (p *grProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// pid is the process's ID.
func (p *grProc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits until the process is reaped; it returns the time
// just before the signal and the time the process was gone.
func (p *grProc) kill() (before, after time.Time) {
	before = time.Now()
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
	return before, time.Now()
}

// stop sends SIGTERM and waits (up to 30 s, then SIGKILL): a graceful shutdown
// commits the refreshes in flight.
func (p *grProc) stop() error {
	if p.exited() {
		return p.err
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
	}
}

// refreshSettings makes refreshing continuous: GetResponse's rate, every token due
// 5 s after its refresh, the refresher waking every 200 ms.
func refreshSettings() []string {
	return []string{"GRCONNECT_REFRESH_RATE=80", "GRCONNECT_REFRESH_CONCURRENCY=8", "GRCONNECT_REFRESH_INTERVAL=200ms",
		"GRCONNECT_REFRESH_MARGIN=" + faultMargin.String()}
}
