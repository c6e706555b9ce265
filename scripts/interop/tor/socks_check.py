#!/usr/bin/env python3
"""Proves that a Tor SOCKS port can open a stream through the private network.

usage: socks_check.py SOCKS_HOST SOCKS_PORT TIMEOUT_SECONDS

Starts a throwaway TCP listener on 127.0.0.1 (an ephemeral port), connects to it through the
SOCKS5 port with a random username/password (a fresh circuit under IsolateSOCKSAuth), sends a
random token and expects the listener to echo it back. Exits 0 on success; on failure prints
why to stderr and exits 1. Standard library only (runs on a fresh Debian).
"""
import os
import socket
import struct
import sys
import threading
import time


def echo_once(server):
    try:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(30)
            data = conn.recv(256)
            conn.sendall(data)
    except OSError:
        pass


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("SOCKS server closed the connection")
        buf += chunk
    return buf


def main():
    host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(timeout)
    target_port = server.getsockname()[1]
    threading.Thread(target=echo_once, args=(server,), daemon=True).start()

    user = os.urandom(8).hex().encode()
    password = os.urandom(8).hex().encode()
    token = b"certwatch-tor-check " + os.urandom(8).hex().encode() + b"\n"
    start = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"\x05\x01\x02")  # SOCKS5, one method: username/password
        if recv_exact(s, 2) != b"\x05\x02":
            raise ConnectionError("SOCKS server refused username/password authentication")
        s.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        if recv_exact(s, 2)[1] != 0:
            raise ConnectionError("SOCKS authentication failed")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", target_port))
        reply = recv_exact(s, 10)
        if reply[1] != 0:
            raise ConnectionError(f"SOCKS CONNECT failed with reply code {reply[1]}")
        s.sendall(token)
        echoed = b""
        while len(echoed) < len(token):
            chunk = s.recv(256)
            if not chunk:
                break
            echoed += chunk
    if echoed != token:
        raise ConnectionError(f"echo mismatch: sent {token!r}, got {echoed!r}")
    print(f"stream through Tor to 127.0.0.1:{target_port} in {time.monotonic() - start:.2f}s")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ConnectionError) as e:
        print(f"socks check failed: {e}", file=sys.stderr)
        sys.exit(1)
