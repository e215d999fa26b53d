// SPDX-License-Identifier: MIT
// Go side of the coev benchmarks: one binary, one workload per run.
//
//	go-bench <spawn|spawn-wg|yield|fib|sleepers|sleepers-cancel|pingpong|mutex|pipeline>
//
// The number of workers is GOMAXPROCS, taken from the environment as usual
// (run.sh sets GOMAXPROCS=2, and 1 for fib's single-worker run). Prints
// exactly one line on stdout:
//
//	BENCH <workload> go workers=<n> <metric>=<value> ...
//
// and exits non-zero if the workload's self-check fails. The channel and
// mutex workloads are in sync_bench.go. spawn, spawn-wg, sleepers and
// sleepers-cancel also print the kernel's counters per task over the
// measured section (see kcount). SLEEPERS in the environment sets the
// number of sleepers (default 100,000 for sleepers, 1,000,000 for
// sleepers-cancel).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	cancelSleeps  = 1000000
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

// kcount: the kernel's counters of the whole process, from
// getrusage(RUSAGE_SELF), read before and after a measured section.
type kcount struct {
	minflt, csw, sys, user int64 // sys and user in ns
}

func kcountRead() kcount {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		die("getrusage: %v", err)
	}
	return kcount{int64(ru.Minflt), int64(ru.Nvcsw + ru.Nivcsw),
		ru.Stime.Nano(), ru.Utime.Nano()}
}

// kcountKeys: the counters' growth from a to b per op, as every benchmark
// program prints them.
func kcountKeys(a, b kcount, ops int) string {
	n := float64(ops)
	return fmt.Sprintf("minflt_per_op=%.4f csw_per_op=%.4f "+
		"sys_ns_per_op=%.2f user_ns_per_op=%.2f",
		float64(b.minflt-a.minflt)/n, float64(b.csw-a.csw)/n,
		float64(b.sys-a.sys)/n, float64(b.user-a.user)/n)
}

// spawn: handles + join. Go has no join handle; the closest is a channel
// of capacity 1 per goroutine that carries its result (a future): the
// spawner keeps the 1M channels and receives from each in turn, as coev
// joins each handle and tokio awaits each JoinHandle.
func spawnBench() string {
	handles := make([]chan int, spawnTasks)
	k0 := kcountRead()
	t0 := time.Now()
	for i := range handles {
		h := make(chan int, 1)
		handles[i] = h
		go func() { h <- 0 }()
	}
	for _, h := range handles {
		if <-h != 0 {
			die("spawn: bad result")
		}
	}
	ns := float64(time.Since(t0).Nanoseconds())
	k1 := kcountRead()
	return fmt.Sprintf("tasks=%d ns_per_task=%.2f %s", spawnTasks,
		ns/spawnTasks, kcountKeys(k0, k1, spawnTasks))
}

// spawn-wg: detached goroutines counted down on a sync.WaitGroup, Go's
// own idiom.
func spawnWgBench() string {
	var wg sync.WaitGroup
	k0 := kcountRead()
	t0 := time.Now()
	wg.Add(spawnTasks)
	for i := 0; i < spawnTasks; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds())
	k1 := kcountRead()
	return fmt.Sprintf("tasks=%d ns_per_task=%.2f %s", spawnTasks,
		ns/spawnTasks, kcountKeys(k0, k1, spawnTasks))
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

// sleepersCount: SLEEPERS from the environment, else dflt.
func sleepersCount(dflt int) int {
	e := os.Getenv("SLEEPERS")
	if e == "" {
		return dflt
	}
	n, err := strconv.Atoi(e)
	if err != nil || n < 1 {
		die("bad SLEEPERS=%s", e)
	}
	return n
}

// waitStarted sleeps until n goroutines have counted themselves started.
func waitStarted(started *int64, n int) {
	for atomic.LoadInt64(started) < int64(n) {
		time.Sleep(5 * time.Millisecond)
	}
}

// kibPerTask: the growth of RSS per task at the peak.
func kibPerTask(rss0, rss1, hwm1 int64, n int) float64 {
	peak := rss1
	if hwm1 > peak {
		peak = hwm1
	}
	grow := peak - rss0
	if grow < 0 {
		grow = 0
	}
	return float64(grow) / float64(n)
}

func sleepersBench() string {
	var wg sync.WaitGroup
	var started int64
	n := sleepersCount(sleepers)
	rss0, _ := memKiB()
	k0 := kcountRead()
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			time.Sleep(sleepFor)
			wg.Done()
		}()
	}
	// Peak: every goroutine has started and is asleep.
	waitStarted(&started, n)
	allAsleep := time.Since(t0).Seconds()
	rss1, hwm1 := memKiB()
	wg.Wait()
	wall := time.Since(t0).Seconds()
	k1 := kcountRead()
	return fmt.Sprintf("tasks=%d rss0_kib=%d rss_kib=%d hwm_kib=%d "+
		"all_asleep_s=%.3f kib_per_task=%.3f wall_s=%.3f %s",
		n, rss0, rss1, hwm1, allAsleep,
		kibPerTask(rss0, rss1, hwm1, n), wall, kcountKeys(k0, k1, n))
}

// sleepers-cancel: n goroutines sleep for an hour, each in a select on
// its timer and on one channel closed to cancel them all (what a
// context.Context's cancel does; a goroutine cannot be cancelled from
// outside). start_s: first spawn to all asleep; cancel_s: the close to
// the last goroutine's wg.Done.
func sleepersCancelBench() string {
	var wg sync.WaitGroup
	var started int64
	n := sleepersCount(cancelSleeps)
	stop := make(chan struct{})
	rss0, _ := memKiB()
	k0 := kcountRead()
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			t := time.NewTimer(time.Hour)
			atomic.AddInt64(&started, 1)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
			}
			wg.Done()
		}()
	}
	waitStarted(&started, n)
	start := time.Since(t0).Seconds()
	rss1, hwm1 := memKiB()
	tc := time.Now()
	close(stop)
	wg.Wait()
	cancel := time.Since(tc).Seconds()
	k1 := kcountRead()
	return fmt.Sprintf("tasks=%d rss0_kib=%d rss_kib=%d hwm_kib=%d "+
		"start_s=%.3f cancel_s=%.3f kib_per_task=%.3f %s",
		n, rss0, rss1, hwm1, start, cancel,
		kibPerTask(rss0, rss1, hwm1, n), kcountKeys(k0, k1, n))
}

func main() {
	if len(os.Args) != 2 {
		die("usage: go-bench <spawn|spawn-wg|yield|fib|sleepers|" +
			"sleepers-cancel|pingpong|mutex|pipeline>")
	}
	var line string
	switch os.Args[1] {
	case "spawn":
		line = spawnBench()
	case "spawn-wg":
		line = spawnWgBench()
	case "yield":
		line = yieldBench()
	case "fib":
		line = fibBench()
	case "sleepers":
		line = sleepersBench()
	case "sleepers-cancel":
		line = sleepersCancelBench()
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
