#!/usr/bin/env python3
"""serve.py ADDR PORT DIR READY: static HTTP server for the e2e scenarios.

Binds the numeric address ADDR (IPv4, or IPv6 with IPv4-mapped connections
accepted too) and never resolves a name: http.server's own server_bind()
calls socket.getfqdn(), a DNS lookup that hangs in a namespace whose
resolver is unreachable. Creates the file READY once it listens.
"""
import functools
import http.server
import socket
import socketserver
import sys

addr, port, root, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
v6 = ":" in addr


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if v6 else socket.AF_INET
    daemon_threads = True

    def server_bind(self):
        if v6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = addr, self.server_address[1]


handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
with Server((addr, port), handler) as server:
    open(ready, "w").close()
    server.serve_forever()
