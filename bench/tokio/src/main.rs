// SPDX-License-Identifier: MIT
// tokio side of the coev benchmarks: one binary, one workload per run.
//
//   tokio-bench <spawn|spawn-wg|yield|fib|sleepers|sleepers-cancel|pingpong|mutex|pipeline> <workers>
//
// Prints exactly one line on stdout:
//   BENCH <workload> tokio workers=<n> <metric>=<value> ...
// and exits non-zero if the workload's self-check fails. The driver task
// runs on a worker (it is spawned, not block_on'd) so that, like coev's main
// task and Go's main goroutine, it spawns from inside the scheduler. The
// channel and mutex workloads are in sync_bench.rs. spawn, spawn-wg,
// sleepers and sleepers-cancel also print the kernel's counters per task
// over the measured section (see Kcount). SLEEPERS in the environment sets
// the number of sleepers (default 100,000 for sleepers, 1,000,000 for
// sleepers-cancel).

mod sync_bench;

use std::future::Future;
use std::pin::Pin;
use std::process::exit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const SPAWN_TASKS: usize = 1_000_000;
const YIELD_TASKS: usize = 1000;
const YIELDS_PER_TASK: usize = 1000;
const FIB_N: u64 = 25;
const FIB_TASKS: u64 = 242_785; // calls of fib(25), the root included
const FIB_RESULT: u64 = 75_025;
const SLEEPERS: usize = 100_000;
const SLEEP: Duration = Duration::from_secs(2);
const CANCEL_SLEEPERS: usize = 1_000_000;
const CANCEL_SLEEP: Duration = Duration::from_secs(3600);

fn die(msg: &str) -> ! {
    eprintln!("tokio-bench: {}", msg);
    exit(1);
}

/// (VmRSS, VmHWM) of this process in KiB.
fn mem_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| die(&format!("/proc/self/status: {}", e)));
    let field = |name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| die(&format!("no {} in /proc/self/status", name)))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The kernel's counters of the whole process, from getrusage(RUSAGE_SELF),
/// read before and after a measured section (times in ns).
struct Kcount {
    minflt: i64,
    csw: i64,
    sys: i64,
    user: i64,
}

impl Kcount {
    fn read() -> Kcount {
        // SAFETY: getrusage only writes the struct it is given.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
                die("getrusage failed");
            }
            ru
        };
        let ns = |t: libc::timeval| t.tv_sec as i64 * 1_000_000_000 + t.tv_usec as i64 * 1000;
        Kcount {
            minflt: ru.ru_minflt as i64,
            csw: (ru.ru_nvcsw + ru.ru_nivcsw) as i64,
            sys: ns(ru.ru_stime),
            user: ns(ru.ru_utime),
        }
    }

    /// The growth since `a` per op, as every benchmark program prints it.
    fn keys_since(&self, a: &Kcount, ops: usize) -> String {
        let n = ops as f64;
        format!(
            "minflt_per_op={:.4} csw_per_op={:.4} sys_ns_per_op={:.2} user_ns_per_op={:.2}",
            (self.minflt - a.minflt) as f64 / n,
            (self.csw - a.csw) as f64 / n,
            (self.sys - a.sys) as f64 / n,
            (self.user - a.user) as f64 / n
        )
    }
}

// spawn: handles + join: every JoinHandle kept, then awaited in turn.
async fn spawn_bench() -> String {
    let mut handles = Vec::with_capacity(SPAWN_TASKS);
    let k0 = Kcount::read();
    let t0 = Instant::now();
    for _ in 0..SPAWN_TASKS {
        handles.push(tokio::spawn(async {}));
    }
    for h in handles {
        h.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    }
    let ns = t0.elapsed().as_nanos() as f64;
    let k1 = Kcount::read();
    format!(
        "tasks={} ns_per_task={:.2} {}",
        SPAWN_TASKS,
        ns / SPAWN_TASKS as f64,
        k1.keys_since(&k0, SPAWN_TASKS)
    )
}

// spawn-wg: detached tasks (their JoinHandles dropped at once) counting
// down an atomic counter; the last one wakes the spawner through a Notify
// (tokio has no wait group; notify_one keeps a permit when nobody waits
// yet, so the wake cannot be lost).
async fn spawn_wg_bench() -> String {
    let wg = Arc::new((AtomicUsize::new(SPAWN_TASKS), Notify::new()));
    let k0 = Kcount::read();
    let t0 = Instant::now();
    for _ in 0..SPAWN_TASKS {
        let wg = wg.clone();
        tokio::spawn(async move {
            if wg.0.fetch_sub(1, Ordering::AcqRel) == 1 {
                wg.1.notify_one();
            }
        });
    }
    wg.1.notified().await;
    let ns = t0.elapsed().as_nanos() as f64;
    let k1 = Kcount::read();
    if wg.0.load(Ordering::Acquire) != 0 {
        die("spawn-wg: woken before the count reached zero");
    }
    format!(
        "tasks={} ns_per_task={:.2} {}",
        SPAWN_TASKS,
        ns / SPAWN_TASKS as f64,
        k1.keys_since(&k0, SPAWN_TASKS)
    )
}

async fn yield_bench() -> String {
    let total = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(YIELD_TASKS);
    let t0 = Instant::now();
    for _ in 0..YIELD_TASKS {
        let total = total.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..YIELDS_PER_TASK {
                tokio::task::yield_now().await;
            }
            total.fetch_add(YIELDS_PER_TASK, Ordering::Relaxed);
        }));
    }
    for h in handles {
        h.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    }
    let ns = t0.elapsed().as_nanos() as f64;
    let n = YIELD_TASKS * YIELDS_PER_TASK;
    if total.load(Ordering::Relaxed) != n {
        die("yield: lost yields");
    }
    format!("yields={} ns_per_yield={:.2}", n, ns / n as f64)
}

// Every call with n >= 2 spawns both children as tasks and joins them.
fn fib(n: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let a = tokio::spawn(fib(n - 1));
        let b = tokio::spawn(fib(n - 2));
        a.await.unwrap() + b.await.unwrap()
    })
}

async fn fib_bench() -> String {
    let t0 = Instant::now();
    let r = tokio::spawn(fib(FIB_N))
        .await
        .unwrap_or_else(|e| die(&format!("join: {}", e)));
    let ns = t0.elapsed().as_nanos() as f64;
    if r != FIB_RESULT {
        die(&format!("fib({}) = {}, expected {}", FIB_N, r, FIB_RESULT));
    }
    format!(
        "tasks={} elapsed_ms={:.3} ns_per_task={:.2}",
        FIB_TASKS,
        ns / 1e6,
        ns / FIB_TASKS as f64
    )
}

/// SLEEPERS from the environment, else `dflt`.
fn sleepers_count(dflt: usize) -> usize {
    match std::env::var("SLEEPERS") {
        Ok(e) if !e.is_empty() => e
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .unwrap_or_else(|| die(&format!("bad SLEEPERS={}", e))),
        _ => dflt,
    }
}

/// A crowd of sleepers, from the spawn of the first to all of them asleep.
struct Crowd {
    n: usize,
    handles: Vec<tokio::task::JoinHandle<()>>,
    rss0: u64,
    rss1: u64,
    hwm1: u64,
    t0: Instant,
    asleep_s: f64,
    k0: Kcount,
}

impl Crowd {
    async fn start(n: usize, sleep: Duration) -> Crowd {
        let started = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(n);
        let (rss0, _) = mem_kib();
        let k0 = Kcount::read();
        let t0 = Instant::now();
        for _ in 0..n {
            let started = started.clone();
            handles.push(tokio::spawn(async move {
                started.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(sleep).await;
            }));
        }
        // Peak: every task has started and is asleep.
        while started.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let asleep_s = t0.elapsed().as_secs_f64();
        let (rss1, hwm1) = mem_kib();
        Crowd {
            n,
            handles,
            rss0,
            rss1,
            hwm1,
            t0,
            asleep_s,
            k0,
        }
    }

    fn kib_per_task(&self) -> f64 {
        self.rss1.max(self.hwm1).saturating_sub(self.rss0) as f64 / self.n as f64
    }
}

async fn sleepers_bench() -> String {
    let mut c = Crowd::start(sleepers_count(SLEEPERS), SLEEP).await;
    for h in std::mem::take(&mut c.handles) {
        h.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    }
    let wall = c.t0.elapsed().as_secs_f64();
    let k1 = Kcount::read();
    format!(
        "tasks={} rss0_kib={} rss_kib={} hwm_kib={} all_asleep_s={:.3} \
         kib_per_task={:.3} wall_s={:.3} {}",
        c.n,
        c.rss0,
        c.rss1,
        c.hwm1,
        c.asleep_s,
        c.kib_per_task(),
        wall,
        k1.keys_since(&c.k0, c.n)
    )
}

// sleepers-cancel: the sleepers sleep for an hour; once all are asleep
// each is aborted through its JoinHandle, then every handle is awaited
// (each must say cancelled). start_s: first spawn to all asleep;
// cancel_s: first abort to the last await.
async fn sleepers_cancel_bench() -> String {
    let mut c = Crowd::start(sleepers_count(CANCEL_SLEEPERS), CANCEL_SLEEP).await;
    let tc = Instant::now();
    for h in &c.handles {
        h.abort();
    }
    for h in std::mem::take(&mut c.handles) {
        match h.await {
            Err(e) if e.is_cancelled() => {}
            _ => die("sleepers-cancel: a sleeper was not cancelled"),
        }
    }
    let cancel_s = tc.elapsed().as_secs_f64();
    let k1 = Kcount::read();
    format!(
        "tasks={} rss0_kib={} rss_kib={} hwm_kib={} start_s={:.3} \
         cancel_s={:.3} kib_per_task={:.3} {}",
        c.n,
        c.rss0,
        c.rss1,
        c.hwm1,
        c.asleep_s,
        cancel_s,
        c.kib_per_task(),
        k1.keys_since(&c.k0, c.n)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        die(
            "usage: tokio-bench <spawn|spawn-wg|yield|fib|sleepers|sleepers-cancel|\
             pingpong|mutex|pipeline> <workers>",
        );
    }
    let workload = args[1].clone();
    let workers: usize = args[2]
        .parse()
        .ok()
        .filter(|&w| w >= 1)
        .unwrap_or_else(|| die("workers must be a positive integer"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .unwrap_or_else(|e| die(&format!("runtime: {}", e)));
    let w = workload.clone();
    let line = rt.block_on(async move {
        let h = tokio::spawn(async move {
            match w.as_str() {
                "spawn" => spawn_bench().await,
                "spawn-wg" => spawn_wg_bench().await,
                "yield" => yield_bench().await,
                "fib" => fib_bench().await,
                "sleepers" => sleepers_bench().await,
                "sleepers-cancel" => sleepers_cancel_bench().await,
                "pingpong" => sync_bench::pingpong_bench().await,
                "mutex" => sync_bench::mutex_bench().await,
                "pipeline" => sync_bench::pipeline_bench().await,
                other => die(&format!("unknown workload {}", other)),
            }
        });
        h.await.unwrap_or_else(|e| die(&format!("driver: {}", e)))
    });
    println!("BENCH {} tokio workers={} {}", workload, workers, line);
    // Do not wait for a graceful runtime teardown.
    rt.shutdown_background();
}
