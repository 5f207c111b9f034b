#!/usr/bin/env python3
"""Slowloris clients for benches/serve.sh.

    python3 benches/slowloris.py HOST PORT CONNECTIONS

CONNECTIONS connections each send the start of a request head, then one more header line a
second, never ending the head. A connection the server closes is counted and opened again,
so the pressure stays until SIGTERM. Then it prints how many the server closed, how long
they had lived, and the age of the oldest one still open: a server that never closes slow
heads shows no closes and an oldest age of the whole run.
"""
import signal
import socket
import statistics
import sys
import time

HEAD = b"POST /v1/predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
TRICKLE = b"X-Trickle: 1\r\n"


def open_one(host, port):
    sock = socket.create_connection((host, port), timeout=5)
    sock.setblocking(False)
    sock.send(HEAD)
    return sock, time.monotonic()


def closed_by_server(sock):
    """Reads what the server sent (a 408, say); true once it has closed the connection."""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except BlockingIOError:
        pass
    except OSError:
        return True
    try:
        sock.send(TRICKLE)
    except BlockingIOError:
        pass
    except OSError:
        return True
    return False


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    conns = [open_one(host, port) for _ in range(n)]
    opened_at = time.monotonic()
    lives = []
    while not stop:
        for i, (sock, born) in enumerate(conns):
            if closed_by_server(sock):
                lives.append(time.monotonic() - born)
                sock.close()
                conns[i] = open_one(host, port)
        time.sleep(1.0)
    now = time.monotonic()
    duration = now - opened_at
    oldest = max(now - born for _, born in conns)
    if lives:
        print(f"slowloris: {n} connections held for {duration:.0f} s; the server closed "
              f"{len(lives)} (lifetime median {statistics.median(lives):.1f} s, "
              f"max {max(lives):.1f} s); oldest still open: {oldest:.1f} s")
    else:
        print(f"slowloris: {n} connections held for {duration:.0f} s; the server closed none; "
              f"oldest still open: {oldest:.1f} s")


if __name__ == "__main__":
    main()
