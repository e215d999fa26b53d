// SPDX-License-Identifier: MIT
// The Go servers of the ws-echo and https workloads (bench/net/).
//
//	go-net ws PORT              WebSocket echo server (gorilla/websocket)
//	go-net http PORT            HTTP/1.1 hello server, plain TCP
//	go-net https PORT CERT KEY  the same hello server over crypto/tls
//
// Every server listens on 127.0.0.1:PORT and is run with GOMAXPROCS=1 (set
// by run-net.sh), so that it has one thread for goroutines, as coev's
// servers have one worker.
//
// ws: the handshake through gorilla's Upgrader on net/http's server, then
// one goroutine per connection that reads each message whole and writes
// it back unchanged, with its type: the idiomatic gorilla echo loop
// (ReadMessage/WriteMessage). Compression is not negotiated (the load
// client does not offer it).
//
// http and https: the same loop on a net.Conn or a tls.Conn, so that the
// two differ only by TLS: a request ends at its blank line (CRLFCRLF),
// every request gets the same fixed "Hello, World!" response, pipelined
// requests are answered in one write, and reads go into a small
// per-connection buffer (no bufio), as in bench/http/go.
//
// Built GOPATH-style (GO111MODULE=off) against Debian's
// golang-github-gorilla-websocket-dev in /usr/share/gocode, as Debian
// packages Go libraries: nothing is downloaded.
package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/gorilla/websocket"
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

// serveHello answers the requests of one connection until it ends.
func serveHello(c net.Conn) {
	defer c.Close()
	buf := make([]byte, reqBuf)
	have := 0
	for {
		got, _ := c.Read(buf[have:])
		if got <= 0 {
			return
		}
		have += got
		n, start := 0, 0
		for {
			i := bytes.Index(buf[start:have], crlfcrlf)
			if i < 0 {
				break
			}
			start += i + 4
			n++
		}
		if n == 0 && have == len(buf) {
			// A request larger than the buffer: not this benchmark's.
			return
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
		have = copy(buf, buf[start:have])
	}
}

func serveListener(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "go-net: accept:", err)
			os.Exit(1)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		go serveHello(c)
	}
}

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

// echo runs one WebSocket connection: every message back, unchanged.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		kind, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go-net ws|http PORT | go-net https PORT CERT KEY")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	port, err := strconv.Atoi(os.Args[2])
	if err != nil {
		usage()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	switch os.Args[1] {
	case "ws":
		http.HandleFunc("/", echo)
		err = http.ListenAndServe(addr, nil)
	case "http", "https":
		var ln net.Listener
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			break
		}
		if os.Args[1] == "https" {
			if len(os.Args) < 5 {
				usage()
			}
			var cert tls.Certificate
			cert, err = tls.LoadX509KeyPair(os.Args[3], os.Args[4])
			if err != nil {
				break
			}
			// net.Listen's listener hands out *net.TCPConn, which
			// serveListener sets TCP_NODELAY on; wrap after that.
			ln = tls.NewListener(noDelay{ln}, &tls.Config{
				Certificates: []tls.Certificate{cert}})
		}
		serveListener(ln)
	default:
		usage()
	}
	fmt.Fprintln(os.Stderr, "go-net:", err)
	os.Exit(1)
}

// noDelay sets TCP_NODELAY on each accepted connection before TLS wraps
// it (a tls.Conn hides the *net.TCPConn from serveListener).
type noDelay struct{ net.Listener }

func (l noDelay) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return c, err
}
