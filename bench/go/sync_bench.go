// SPDX-License-Identifier: MIT
// The synchronisation workloads of the Go side: channels and a mutex.
//
//	go-bench <pingpong|mutex|pipeline>
//
// Each returns the key=value part of its BENCH line and dies if its
// self-check fails. The workers are GOMAXPROCS, as for the other workloads.
package main

import (
	"fmt"
	"sync"
	"time"
)

const (
	pingpongRounds = 1000000
	mutexTasks     = 8
	mutexPairs     = 100000 // lock/unlock pairs per goroutine
	pipelineMsgs   = 10000000
	pipelineCap    = 1024
)

// pingpong: two goroutines bounce a counter through two unbuffered
// channels; each side adds one, so after n round trips it is 2n.
func pingpongBench() string {
	ab := make(chan uint64)
	ba := make(chan uint64)
	var final uint64
	var wg sync.WaitGroup
	k0 := kcountRead()
	t0 := time.Now()
	wg.Add(2)
	go func() {
		var c uint64
		for i := 0; i < pingpongRounds; i++ {
			ab <- c
			c = <-ba + 1
		}
		final = c
		wg.Done()
	}()
	go func() {
		for i := 0; i < pingpongRounds; i++ {
			c := <-ab
			ba <- c + 1
		}
		wg.Done()
	}()
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds())
	k1 := kcountRead()
	if final != 2*pingpongRounds {
		die("pingpong: counter %d, expected %d", final, 2*pingpongRounds)
	}
	return fmt.Sprintf("roundtrips=%d ns_per_roundtrip=%.2f %s",
		pingpongRounds, ns/pingpongRounds,
		kcountKeys(k0, k1, pingpongRounds))
}

// mutex: 8 goroutines each take and release one sync.Mutex 100,000
// times, incrementing a shared counter while they hold it.
func mutexBench() string {
	var mu sync.Mutex
	var counter uint64
	var wg sync.WaitGroup
	k0 := kcountRead()
	t0 := time.Now()
	wg.Add(mutexTasks)
	for i := 0; i < mutexTasks; i++ {
		go func() {
			for j := 0; j < mutexPairs; j++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds())
	k1 := kcountRead()
	n := mutexTasks * mutexPairs
	if counter != uint64(n) {
		die("mutex: counter %d, expected %d", counter, n)
	}
	return fmt.Sprintf("tasks=%d pairs=%d ns_per_pair=%.2f %s", mutexTasks,
		n, ns/float64(n), kcountKeys(k0, k1, n))
}

// pipeline: producer -> A -> processor (x*2+1) -> B -> consumer (sum),
// both channels buffered with 1024 slots. The producer sends 0..n-1, so
// the sum of 2x+1 over them is n*n.
func pipelineBench() string {
	a := make(chan uint64, pipelineCap)
	b := make(chan uint64, pipelineCap)
	var sum uint64
	var wg sync.WaitGroup
	k0 := kcountRead()
	t0 := time.Now()
	wg.Add(3)
	go func() {
		for i := uint64(0); i < pipelineMsgs; i++ {
			a <- i
		}
		close(a)
		wg.Done()
	}()
	go func() {
		for x := range a {
			b <- x*2 + 1
		}
		close(b)
		wg.Done()
	}()
	go func() {
		var s uint64
		for y := range b {
			s += y
		}
		sum = s
		wg.Done()
	}()
	wg.Wait()
	s := time.Since(t0).Seconds()
	k1 := kcountRead()
	if want := uint64(pipelineMsgs) * pipelineMsgs; sum != want {
		die("pipeline: sum %d, expected %d", sum, want)
	}
	return fmt.Sprintf("msgs=%d elapsed_ms=%.3f msgs_per_s=%.0f %s",
		pipelineMsgs, s*1e3, pipelineMsgs/s,
		kcountKeys(k0, k1, pipelineMsgs))
}
