package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	shippedOnce sync.Once
	shippedBin  string
	shippedErr  error
)

// shippedBinary builds grconnect as it ships (CGO_ENABLED=0, static) once per run.
func shippedBinary(tb testing.TB) string {
	tb.Helper()
	shippedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "grconnect-shipped-")
		if err != nil {
			shippedErr = err
			return
		}
		shippedBin = filepath.Join(dir, "grconnect")
		cmd := exec.Command("go", "build", "-trimpath", "-o", shippedBin, "github.com/grconnect/grconnect")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			shippedErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if shippedErr != nil {
		tb.Fatal(shippedErr)
	}
	return shippedBin
}

// BenchmarkStartup measures what a new user meets first, on an empty install:
// exec → /readyz answering 200 (wall clock, and the CPU the process used until
// then, which a busy machine does not inflate), and the resident memory after
// three idle seconds. Each run starts grconnect serve (built as it ships) on a
// fresh database and polls /readyz every millisecond from this process:
//
//	go test -run '^$' -bench Startup -benchtime 1x ./services/infra/e2e/
//
// RUNS (default 7) sets how many starts the medians cover.
func BenchmarkStartup(b *testing.B) {
	bin := shippedBinary(b)
	runs := 7
	if n, err := strconv.Atoi(os.Getenv("RUNS")); err == nil && n > 0 {
		runs = n
	}
	client := &http.Client{Timeout: time.Second}
	var ready, cpu []time.Duration
	var rssKB, anonKB, fileKB []int64
	for i := range runs {
		dir := b.TempDir()
		addr := freeAddr(b)
		cmd := exec.Command(bin, "serve")
		cmd.Env = []string{"GRCONNECT_DATABASE=" + filepath.Join(dir, "data", "grconnect.db"), "GRCONNECT_ADDR=" + addr, "GRCONNECT_LOG_LEVEL=warn"}
		log := &syncLog{}
		cmd.Stdout, cmd.Stderr = log, log
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			res, err := client.Get("http://" + addr + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatalf("not ready in 30 s:\n%s", log.String())
			}
			time.Sleep(time.Millisecond)
		}
		ready = append(ready, time.Since(start))
		cpu = append(cpu, processCPU(b, cmd.Process.Pid))
		time.Sleep(3 * time.Second)
		rssKB = append(rssKB, statusKB(b, cmd.Process.Pid, "VmRSS"))
		anonKB = append(anonKB, statusKB(b, cmd.Process.Pid, "RssAnon"))
		fileKB = append(fileKB, statusKB(b, cmd.Process.Pid, "RssFile"))
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("run %d: %v\n%s", i, err, log.String())
		}
	}
	rss := float64(median(rssKB)) / 1024
	b.ReportMetric(float64(median(ready))/1e6, "ready-ms")
	b.ReportMetric(float64(median(cpu))/1e6, "cpu-ms")
	b.ReportMetric(rss, "idle-rss-MB")
	b.Logf("\nempty install, medians of %d starts:\n  exec → /readyz 200: %v (runs %v)\n  CPU until ready:    %v (runs %v)\n  idle RSS after 3 s: %.1f MB (runs %v kB)\n    of which anonymous %.1f MB (the process's own memory), file %.1f MB (pages of the binary)",
		runs, median(ready).Round(time.Millisecond), roundAll(ready), median(cpu), cpu, rss, rssKB, float64(median(anonKB))/1024, float64(median(fileKB))/1024)
}

func median[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// processCPU is the user and system CPU time a process has used (Linux /proc).
func processCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's closing parenthesis: utime and stime are
	// the 12th and 13th, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// statusKB reads a kB figure of /proc/<pid>/status.
func statusKB(b *testing.B, pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
