// SPDX-License-Identifier: MIT
// The Go server of the http and c10k workloads (bench/http/).
//
//	go-http PORT
//
// A keep-alive HTTP/1.1 server on 127.0.0.1:PORT: a plain net.Listener and
// one goroutine per connection, run with GOMAXPROCS=1 (set by run.sh). As
// in coev_http.c, a request ends at its blank line (CRLFCRLF), every
// request gets the same fixed "Hello, World!" response, pipelined requests
// are answered in one write, and reads go straight into a small
// per-connection buffer (no bufio), so only the runtime differs.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

const reqBuf = 2048
const batch = 16

const response = "HTTP/1.1 200 OK\r\n" +
	"Content-Length: 13\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Hello, World!"

// The response repeated batch times; k pipelined requests are answered
// with its first k copies.
var responses = bytes.Repeat([]byte(response), batch)

var crlfcrlf = []byte("\r\n\r\n")

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, reqBuf)
	have := 0
	for {
		// A TCP read that fails or ends the stream returns no bytes;
		// bytes that come with an error are served, and the next read
		// reports it again.
		got, _ := c.Read(buf[have:])
		if got <= 0 {
			return
		}
		have += got
		n, used := 0, 0
		for {
			i := bytes.Index(buf[used:have], crlfcrlf)
			if i < 0 {
				break
			}
			used += i + 4
			n++
		}
		for n > 0 {
			k := n
			if k > batch {
				k = batch
			}
			if _, err := c.Write(responses[:k*len(response)]); err != nil {
				return
			}
			n -= k
		}
		// A request larger than the buffer is not one of ours.
		if used == 0 && have == reqBuf {
			return
		}
		copy(buf, buf[used:have])
		have -= used
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-http PORT")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[1])
	if err != nil || port <= 0 || port > 65535 {
		fmt.Fprintf(os.Stderr, "go-http: bad port '%s'\n", os.Args[1])
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-http:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of descriptors: wait for connections to close
			// instead of spinning on the listening socket.
			fmt.Fprintln(os.Stderr, "go-http: accept:", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// TCP_NODELAY is Go's default, as in every server here.
		go serve(c)
	}
}
