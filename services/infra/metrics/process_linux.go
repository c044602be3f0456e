package metrics

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The process's series (process_*) as the OS sees it, read from /proc the way
// the Prometheus Go client's process collector read them. A file that cannot
// be read leaves its series out of the scrape.

// userHZ is the unit of /proc's CPU times and start time: 100 on every Linux
// Go runs on (sysconf(_SC_CLK_TCK), which a static binary cannot ask).
const userHZ = 100

// procState is one reading of /proc/self.
type procState struct {
	statOK                 bool
	cpuSeconds, vsize, rss float64
	startOK                bool
	start                  float64
	fdsOK                  bool
	openFDs                float64
	limitsOK               bool
	maxFDs, maxVsize       float64
	netOK                  bool
	netReceived, netSent   float64
}

func readProcState() *procState {
	p := &procState{}
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		p.readStat(stat)
	}
	if dir, err := os.Open("/proc/self/fd"); err == nil {
		names, err := dir.Readdirnames(-1)
		dir.Close()
		// The count includes the descriptor that read it, as the Go client's did.
		p.openFDs, p.fdsOK = float64(len(names)), err == nil
	}
	var files, space syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &files) == nil && syscall.Getrlimit(syscall.RLIMIT_AS, &space) == nil {
		p.maxFDs, p.maxVsize, p.limitsOK = float64(files.Cur), float64(space.Cur), true
	}
	if netstat, err := os.ReadFile("/proc/self/net/netstat"); err == nil {
		p.netReceived, p.netSent, p.netOK = ipOctets(netstat)
	}
	return p
}

// readStat reads /proc/self/stat (proc(5)): the fields after the command's
// closing parenthesis start with the state (field 3); utime and stime are 14
// and 15 (clock ticks), starttime 22 (ticks after boot), vsize 23 (bytes), rss
// 24 (pages).
func (p *procState) readStat(stat []byte) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return
	}
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 22 {
		return
	}
	field := func(n int) (uint64, error) { return strconv.ParseUint(f[n-3], 10, 64) }
	utime, err := field(14)
	stime, err2 := field(15)
	vsize, err3 := field(23)
	rss, err4 := field(24)
	if err != nil || err2 != nil || err3 != nil || err4 != nil {
		return
	}
	p.statOK = true
	p.cpuSeconds = float64(utime+stime) / userHZ
	p.vsize = float64(vsize)
	p.rss = float64(rss) * float64(os.Getpagesize())
	startTicks, err := field(22)
	if boot, bootErr := bootTime(); err == nil && bootErr == nil {
		p.start, p.startOK = float64(boot)+float64(startTicks)/userHZ, true
	}
}

// bootTime is when the machine booted (btime in /proc/stat, Unix seconds); it is
// read once, at the first scrape.
var bootTime = sync.OnceValues(func() (uint64, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(stat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("metrics: no btime in /proc/stat")
})

// ipOctets reads the bytes received and sent (InOctets, OutOctets of IpExt) from
// /proc/self/net/netstat, where each group is a line of names and a line of values.
func ipOctets(netstat []byte) (in, out float64, ok bool) {
	var names []string
	for line := range strings.SplitSeq(string(netstat), "\n") {
		rest, found := strings.CutPrefix(line, "IpExt: ")
		if !found {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		values := strings.Fields(rest)
		if len(values) != len(names) {
			return 0, 0, false
		}
		var gotIn, gotOut bool
		for i, name := range names {
			v, err := strconv.ParseFloat(values[i], 64)
			switch {
			case err != nil:
			case name == "InOctets":
				in, gotIn = v, true
			case name == "OutOctets":
				out, gotOut = v, true
			}
		}
		return in, out, gotIn && gotOut
	}
	return 0, 0, false
}

// processFamilies are the process_* families, sorted by name.
func processFamilies() []family {
	proc := func(name, typ, help string, value func(p *procState) (float64, bool)) family {
		return family{name: name, typ: typ, help: help, write: func(e *expo) {
			if v, ok := value(e.procState()); ok {
				e.sample(name, v)
			}
		}}
	}
	return []family{
		proc("process_cpu_seconds_total", typeCounter, "Total user and system CPU time spent in seconds.",
			func(p *procState) (float64, bool) { return p.cpuSeconds, p.statOK }),
		proc("process_max_fds", typeGauge, "Maximum number of open file descriptors.",
			func(p *procState) (float64, bool) { return p.maxFDs, p.limitsOK }),
		proc("process_network_receive_bytes_total", typeCounter, "Number of bytes received by the process over the network.",
			func(p *procState) (float64, bool) { return p.netReceived, p.netOK }),
		proc("process_network_transmit_bytes_total", typeCounter, "Number of bytes sent by the process over the network.",
			func(p *procState) (float64, bool) { return p.netSent, p.netOK }),
		proc("process_open_fds", typeGauge, "Number of open file descriptors.",
			func(p *procState) (float64, bool) { return p.openFDs, p.fdsOK }),
		proc("process_resident_memory_bytes", typeGauge, "Resident memory size in bytes.",
			func(p *procState) (float64, bool) { return p.rss, p.statOK }),
		proc("process_start_time_seconds", typeGauge, "Start time of the process since unix epoch in seconds.",
			func(p *procState) (float64, bool) { return p.start, p.startOK }),
		proc("process_virtual_memory_bytes", typeGauge, "Virtual memory size in bytes.",
			func(p *procState) (float64, bool) { return p.vsize, p.statOK }),
		proc("process_virtual_memory_max_bytes", typeGauge, "Maximum amount of virtual memory available in bytes.",
			func(p *procState) (float64, bool) { return p.maxVsize, p.limitsOK }),
	}
}
