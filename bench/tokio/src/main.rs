// tokio side of the coev benchmarks: one binary, one workload per run.
//
//   tokio-bench <spawn|yield|fib|sleepers|pingpong|mutex|pipeline> <workers>
//
// Prints exactly one line on stdout:
//   BENCH <workload> tokio workers=<n> <metric>=<value> ...
// and exits non-zero if the workload's self-check fails. The driver task
// runs on a worker (it is spawned, not block_on'd) so that, like coev's main
// task and Go's main goroutine, it spawns from inside the scheduler. The
// channel and mutex workloads are in sync_bench.rs.

mod sync_bench;

use std::future::Future;
use std::pin::Pin;
use std::process::exit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SPAWN_TASKS: usize = 1_000_000;
const YIELD_TASKS: usize = 1000;
const YIELDS_PER_TASK: usize = 1000;
const FIB_N: u64 = 25;
const FIB_TASKS: u64 = 242_785; // calls of fib(25), the root included
const FIB_RESULT: u64 = 75_025;
const SLEEPERS: usize = 100_000;
const SLEEP: Duration = Duration::from_secs(2);

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

async fn spawn_bench() -> String {
    let mut handles = Vec::with_capacity(SPAWN_TASKS);
    let t0 = Instant::now();
    for _ in 0..SPAWN_TASKS {
        handles.push(tokio::spawn(async {}));
    }
    for h in handles {
        h.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    }
    let ns = t0.elapsed().as_nanos() as f64;
    format!(
        "tasks={} ns_per_task={:.2}",
        SPAWN_TASKS,
        ns / SPAWN_TASKS as f64
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

async fn sleepers_bench() -> String {
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(SLEEPERS);
    let (rss0, _) = mem_kib();
    let t0 = Instant::now();
    for _ in 0..SLEEPERS {
        let started = started.clone();
        handles.push(tokio::spawn(async move {
            started.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(SLEEP).await;
        }));
    }
    // Peak: every task has started and is asleep.
    while started.load(Ordering::Relaxed) < SLEEPERS {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_asleep_s = t0.elapsed().as_secs_f64();
    let (rss1, hwm1) = mem_kib();
    for h in handles {
        h.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    }
    let wall = t0.elapsed().as_secs_f64();
    let peak = rss1.max(hwm1);
    format!(
        "tasks={} rss0_kib={} rss_kib={} hwm_kib={} all_asleep_s={:.3} \
         kib_per_task={:.3} wall_s={:.3}",
        SLEEPERS,
        rss0,
        rss1,
        hwm1,
        all_asleep_s,
        peak.saturating_sub(rss0) as f64 / SLEEPERS as f64,
        wall
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        die(
            "usage: tokio-bench <spawn|yield|fib|sleepers|pingpong|mutex|pipeline> \
             <workers>",
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
                "yield" => yield_bench().await,
                "fib" => fib_bench().await,
                "sleepers" => sleepers_bench().await,
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
