// Go side of the coev benchmarks: one binary, one workload per run.
//
//	go-bench <spawn|yield|fib|sleepers|pingpong|mutex|pipeline>
//
// The number of workers is GOMAXPROCS, taken from the environment as usual
// (run.sh sets GOMAXPROCS=2, and 1 for fib's single-worker run). Prints
// exactly one line on stdout:
//
//	BENCH <workload> go workers=<n> <metric>=<value> ...
//
// and exits non-zero if the workload's self-check fails. The channel and
// mutex workloads are in sync_bench.go.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	spawnTasks    = 1000000
	yieldTasks    = 1000
	yieldsPerTask = 1000
	fibN          = 25
	fibTasks      = 242785 // calls of fib(25), the root included
	fibResult     = 75025
	sleepers      = 100000
	sleepFor      = 2 * time.Second
)

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-bench: "+format+"\n", a...)
	os.Exit(1)
}

// memKiB returns VmRSS and VmHWM of this process in KiB.
func memKiB() (rss, hwm int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		die("/proc/self/status: %v", err)
	}
	rss, hwm = -1, -1
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	if rss < 0 || hwm < 0 {
		die("no VmRSS/VmHWM in /proc/self/status")
	}
	return rss, hwm
}

func spawnBench() string {
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(spawnTasks)
	for i := 0; i < spawnTasks; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds())
	return fmt.Sprintf("tasks=%d ns_per_task=%.2f", spawnTasks, ns/spawnTasks)
}

func yieldBench() string {
	var wg sync.WaitGroup
	var total int64
	t0 := time.Now()
	wg.Add(yieldTasks)
	for i := 0; i < yieldTasks; i++ {
		go func() {
			for j := 0; j < yieldsPerTask; j++ {
				runtime.Gosched()
			}
			atomic.AddInt64(&total, yieldsPerTask)
			wg.Done()
		}()
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds())
	n := yieldTasks * yieldsPerTask
	if atomic.LoadInt64(&total) != int64(n) {
		die("yield: lost yields")
	}
	return fmt.Sprintf("yields=%d ns_per_yield=%.2f", n, ns/float64(n))
}

// fib: every call with n >= 2 starts both children as goroutines and waits
// for them.
func fib(n int) int {
	if n < 2 {
		return n
	}
	var a, b int
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { a = fib(n - 1); wg.Done() }()
	go func() { b = fib(n - 2); wg.Done() }()
	wg.Wait()
	return a + b
}

func fibBench() string {
	var r int
	done := make(chan struct{})
	t0 := time.Now()
	go func() { r = fib(fibN); close(done) }()
	<-done
	ns := float64(time.Since(t0).Nanoseconds())
	if r != fibResult {
		die("fib(%d) = %d, expected %d", fibN, r, fibResult)
	}
	return fmt.Sprintf("tasks=%d elapsed_ms=%.3f ns_per_task=%.2f",
		fibTasks, ns/1e6, ns/fibTasks)
}

func sleepersBench() string {
	var wg sync.WaitGroup
	var started int64
	rss0, _ := memKiB()
	t0 := time.Now()
	wg.Add(sleepers)
	for i := 0; i < sleepers; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			time.Sleep(sleepFor)
			wg.Done()
		}()
	}
	// Peak: every goroutine has started and is asleep.
	for atomic.LoadInt64(&started) < sleepers {
		time.Sleep(5 * time.Millisecond)
	}
	allAsleep := time.Since(t0).Seconds()
	rss1, hwm1 := memKiB()
	wg.Wait()
	wall := time.Since(t0).Seconds()
	peak := rss1
	if hwm1 > peak {
		peak = hwm1
	}
	grow := peak - rss0
	if grow < 0 {
		grow = 0
	}
	return fmt.Sprintf("tasks=%d rss0_kib=%d rss_kib=%d hwm_kib=%d "+
		"all_asleep_s=%.3f kib_per_task=%.3f wall_s=%.3f",
		sleepers, rss0, rss1, hwm1, allAsleep,
		float64(grow)/sleepers, wall)
}

func main() {
	if len(os.Args) != 2 {
		die("usage: go-bench <spawn|yield|fib|sleepers|pingpong|mutex|pipeline>")
	}
	var line string
	switch os.Args[1] {
	case "spawn":
		line = spawnBench()
	case "yield":
		line = yieldBench()
	case "fib":
		line = fibBench()
	case "sleepers":
		line = sleepersBench()
	case "pingpong":
		line = pingpongBench()
	case "mutex":
		line = mutexBench()
	case "pipeline":
		line = pipelineBench()
	default:
		die("unknown workload %s", os.Args[1])
	}
	fmt.Printf("BENCH %s go workers=%d %s\n", os.Args[1],
		runtime.GOMAXPROCS(0), line)
}
