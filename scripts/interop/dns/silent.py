"""A DNS server that never answers: the far end of the `dead` scenario's delegation.

Binds UDP and TCP on ADDR:PORT, reads every query and drops it; TCP connections are held
open without a reply, so resolvers see a timeout (not a fast ICMP port-unreachable).
Usage: python3 silent.py ADDR PORT
"""
import selectors
import socket
import sys

addr = (sys.argv[1], int(sys.argv[2]))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(addr)
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(addr)
tcp.listen(64)
sel = selectors.DefaultSelector()
sel.register(udp, selectors.EVENT_READ)
sel.register(tcp, selectors.EVENT_READ)
print(f"silent DNS sink on {addr[0]}:{addr[1]} (udp+tcp)", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is udp:
            udp.recvfrom(65535)
        elif s is tcp:
            conn, _ = tcp.accept()
            sel.register(conn, selectors.EVENT_READ)
        else:
            try:
                data = s.recv(65535)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
