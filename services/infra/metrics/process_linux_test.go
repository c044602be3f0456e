package metrics

import (
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testStart is about when this test process started.
var testStart = time.Now()

// TestProcessSeriesFollowTheProcess: the process_* series say what /proc and the
// kernel say by other means, and move with what the process does.
func TestProcessSeriesFollowTheProcess(t *testing.T) {
	r := New(fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	read := func(name string) float64 {
		t.Helper()
		v, ok := sampleValue(parse(t, scrape(t, r)), name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return v
	}

	fds := read("process_open_fds")
	dir := t.TempDir()
	for i := range 20 {
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	if got := read("process_open_fds"); got < fds+20 {
		t.Errorf("process_open_fds %v after opening 20 files more than %v", got, fds)
	}

	if got, want := read("process_max_fds"), limitsFigure(t, "Max open files"); got != want {
		t.Errorf("process_max_fds %v, /proc/self/limits says %v", got, want)
	}
	if got, want := read("process_virtual_memory_max_bytes"), limitsFigure(t, "Max address space"); got != want {
		t.Errorf("process_virtual_memory_max_bytes %v, /proc/self/limits says %v", got, want)
	}

	rss := read("process_resident_memory_bytes")
	if status := statusBytes(t, "VmRSS"); math.Abs(rss-status) > 0.2*status {
		t.Errorf("process_resident_memory_bytes %v, /proc/self/status says %v", rss, status)
	}
	if vsize, status := read("process_virtual_memory_bytes"), statusBytes(t, "VmSize"); math.Abs(vsize-status) > 0.2*status {
		t.Errorf("process_virtual_memory_bytes %v, /proc/self/status says %v", vsize, status)
	}

	// /proc counts the start in clock ticks after a boot time in whole seconds.
	if start := read("process_start_time_seconds"); start < float64(testStart.Unix())-10 || start > float64(testStart.UnixNano())/1e9+1 {
		t.Errorf("process_start_time_seconds %v, the test started at %v", start, testStart.Unix())
	}

	cpu, used := read("process_cpu_seconds_total"), rusageCPU(t)
	deadline := time.Now().Add(10 * time.Second)
	for rusageCPU(t) < used+200*time.Millisecond && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			sink = strconv.AppendInt(sink[:0], int64(i), 10)
		}
	}
	if got := read("process_cpu_seconds_total"); got < cpu+0.15 {
		t.Errorf("process_cpu_seconds_total %v after using 0.2 s of CPU more than %v", got, cpu)
	}

	sent := read("process_network_transmit_bytes_total")
	received := read("process_network_receive_bytes_total")
	sendOverLoopback(t, 1<<20)
	if got := read("process_network_transmit_bytes_total"); got < sent+1<<20 {
		t.Errorf("process_network_transmit_bytes_total %v after sending 1 MB more than %v", got, sent)
	}
	if got := read("process_network_receive_bytes_total"); got < received+1<<20 {
		t.Errorf("process_network_receive_bytes_total %v after receiving 1 MB more than %v", got, received)
	}
}

// limitsFigure reads a soft limit of /proc/self/limits ("unlimited" as the
// largest uint64, as the kernel's RLIM_INFINITY is).
func limitsFigure(t *testing.T, name string) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			soft := strings.Fields(rest)[0]
			if soft == "unlimited" {
				return float64(^uint64(0))
			}
			v, err := strconv.ParseFloat(soft, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %q in /proc/self/limits", name)
	return 0
}

// statusBytes reads a kB figure of /proc/self/status, in bytes.
func statusBytes(t *testing.T, field string) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// rusageCPU is the CPU time this process used, as getrusage(2) says.
func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		t.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// sendOverLoopback sends n bytes to itself over a TCP connection on 127.0.0.1.
func sendOverLoopback(t *testing.T, n int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		done <- err
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
