// SPDX-License-Identifier: MIT
// The synchronisation workloads of the tokio side: tokio::sync's bounded
// mpsc channels and its Mutex.
//
//   tokio-bench <pingpong|mutex|pipeline> <workers>
//
// Each returns the key=value part of its BENCH line and dies if its
// self-check fails. They run in the driver task, on a worker, like the
// workloads in main.rs.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, Mutex};

use crate::{die, Kcount};

const PINGPONG_ROUNDS: u64 = 1_000_000;
const MUTEX_TASKS: usize = 8;
const MUTEX_PAIRS: u64 = 100_000; // lock/unlock pairs per task
const PIPELINE_MSGS: u64 = 10_000_000;
const PIPELINE_CAP: usize = 1024;

async fn join_all(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        h.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    }
}

// Two tasks bounce a counter through two channels of capacity 1; each
// side adds one, so after n round trips it is 2n.
pub async fn pingpong_bench() -> String {
    let (ab_tx, mut ab_rx) = mpsc::channel::<u64>(1);
    let (ba_tx, mut ba_rx) = mpsc::channel::<u64>(1);
    let k0 = Kcount::read();
    let t0 = Instant::now();
    let ping = tokio::spawn(async move {
        let mut c = 0u64;
        for _ in 0..PINGPONG_ROUNDS {
            if ab_tx.send(c).await.is_err() {
                die("pingpong: pong hung up");
            }
            c = ba_rx
                .recv()
                .await
                .unwrap_or_else(|| die("pingpong: pong hung up"))
                + 1;
        }
        c
    });
    let pong = tokio::spawn(async move {
        for _ in 0..PINGPONG_ROUNDS {
            let c = ab_rx
                .recv()
                .await
                .unwrap_or_else(|| die("pingpong: ping hung up"));
            if ba_tx.send(c + 1).await.is_err() {
                die("pingpong: ping hung up");
            }
        }
    });
    let c = ping.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    pong.await.unwrap_or_else(|e| die(&format!("join: {}", e)));
    let ns = t0.elapsed().as_nanos() as f64;
    let k1 = Kcount::read();
    if c != 2 * PINGPONG_ROUNDS {
        die(&format!(
            "pingpong: counter {}, expected {}",
            c,
            2 * PINGPONG_ROUNDS
        ));
    }
    format!(
        "roundtrips={} ns_per_roundtrip={:.2} {}",
        PINGPONG_ROUNDS,
        ns / PINGPONG_ROUNDS as f64,
        k1.keys_since(&k0, PINGPONG_ROUNDS as usize)
    )
}

// 8 tasks each take and release one tokio Mutex 100,000 times,
// incrementing the counter it guards.
pub async fn mutex_bench() -> String {
    let counter = Arc::new(Mutex::new(0u64));
    let k0 = Kcount::read();
    let t0 = Instant::now();
    let handles = (0..MUTEX_TASKS)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for _ in 0..MUTEX_PAIRS {
                    *counter.lock().await += 1;
                }
            })
        })
        .collect();
    join_all(handles).await;
    let ns = t0.elapsed().as_nanos() as f64;
    let k1 = Kcount::read();
    let n = MUTEX_TASKS as u64 * MUTEX_PAIRS;
    let c = *counter.lock().await;
    if c != n {
        die(&format!("mutex: counter {}, expected {}", c, n));
    }
    format!(
        "tasks={} pairs={} ns_per_pair={:.2} {}",
        MUTEX_TASKS,
        n,
        ns / n as f64,
        k1.keys_since(&k0, n as usize)
    )
}

// producer -> A -> processor (x*2+1) -> B -> consumer (sum), both channels
// bounded at 1024. Dropping a sender closes its channel: the producer's
// when it has sent everything, the processor's when A is drained. The
// producer sends 0..n-1, so the sum of 2x+1 over them is n*n.
pub async fn pipeline_bench() -> String {
    let (a_tx, mut a_rx) = mpsc::channel::<u64>(PIPELINE_CAP);
    let (b_tx, mut b_rx) = mpsc::channel::<u64>(PIPELINE_CAP);
    let k0 = Kcount::read();
    let t0 = Instant::now();
    let producer = tokio::spawn(async move {
        for i in 0..PIPELINE_MSGS {
            if a_tx.send(i).await.is_err() {
                die("pipeline: processor hung up");
            }
        }
    });
    let processor = tokio::spawn(async move {
        while let Some(x) = a_rx.recv().await {
            if b_tx.send(x * 2 + 1).await.is_err() {
                die("pipeline: consumer hung up");
            }
        }
    });
    let consumer = tokio::spawn(async move {
        let mut sum = 0u64;
        while let Some(y) = b_rx.recv().await {
            sum += y;
        }
        sum
    });
    join_all(vec![producer, processor]).await;
    let sum = consumer
        .await
        .unwrap_or_else(|e| die(&format!("join: {}", e)));
    let s = t0.elapsed().as_secs_f64();
    let k1 = Kcount::read();
    if sum != PIPELINE_MSGS * PIPELINE_MSGS {
        die(&format!(
            "pipeline: sum {}, expected {}",
            sum,
            PIPELINE_MSGS * PIPELINE_MSGS
        ));
    }
    format!(
        "msgs={} elapsed_ms={:.3} msgs_per_s={:.0} {}",
        PIPELINE_MSGS,
        s * 1e3,
        PIPELINE_MSGS as f64 / s,
        k1.keys_since(&k0, PIPELINE_MSGS as usize)
    )
}
