// SPDX-License-Identifier: MIT
// The tokio server of the http and c10k workloads (bench/http/).
//
//   tokio-http PORT
//
// A keep-alive HTTP/1.1 server on 127.0.0.1:PORT: a current_thread
// runtime, a TcpListener and one tokio::spawn'd task per connection using
// AsyncReadExt/AsyncWriteExt. As in coev_http.c, a request ends at its
// blank line (CRLFCRLF), every request gets the same fixed "Hello, World!"
// response, pipelined requests are answered in one write, and reads go
// into a small per-connection buffer (no BufReader).

use std::process::exit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REQ_BUF: usize = 2048;
const BATCH: usize = 16;
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Length: 13\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hello, World!";

/// Index just past the first CRLFCRLF in buf, if any.
fn request_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

async fn serve(mut sock: TcpStream, responses: &'static [u8]) {
    // The buffer is part of the task's future, like a coev task's stack
    // buffer: one allocation per connection.
    let mut buf = [0u8; REQ_BUF];
    let mut have = 0;
    loop {
        let got = match sock.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += got;
        let (mut n, mut used) = (0, 0);
        while let Some(end) = request_end(&buf[used..have]) {
            used += end;
            n += 1;
        }
        while n > 0 {
            let k = n.min(BATCH);
            if sock
                .write_all(&responses[..k * RESPONSE.len()])
                .await
                .is_err()
            {
                return;
            }
            n -= k;
        }
        // A request larger than the buffer is not one of ours.
        if used == 0 && have == REQ_BUF {
            return;
        }
        buf.copy_within(used..have, 0);
        have -= used;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: tokio-http PORT");
        exit(2);
    }
    let port: u16 = match args[1].parse() {
        Ok(p) if p > 0 => p,
        _ => {
            eprintln!("tokio-http: bad port '{}'", args[1]);
            exit(2);
        }
    };
    let responses: &'static [u8] = RESPONSE.repeat(BATCH).leak();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("tokio-http: runtime: {}", e);
            exit(1);
        });
    rt.block_on(async move {
        let ln = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| {
                eprintln!("tokio-http: listen on port {}: {}", port, e);
                exit(1);
            });
        loop {
            match ln.accept().await {
                Ok((sock, _)) => {
                    // Nagle off, as in every server here.
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve(sock, responses));
                }
                Err(e) => {
                    // Out of descriptors: pause rather than spin on the
                    // listener. Without tokio's timer (not enabled) the
                    // pause blocks the whole thread; the benchmark raises
                    // the descriptor limit so that this does not happen.
                    eprintln!("tokio-http: accept: {}", e);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    });
}
