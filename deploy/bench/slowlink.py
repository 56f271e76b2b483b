#!/usr/bin/env python3
"""A slow, far link for benchmarks (this kernel has no netem): a TCP relay
that adds a one-way delay to every byte and serialises each direction at a
fixed rate, with a bounded queue so TCP flow control still works.

    deploy/bench/slowlink.py LISTEN_PORT TARGET_HOST TARGET_PORT [DELAY_MS] [MBIT]

Defaults: 25 ms each way (50 ms round trip), 20 Mbit/s. Prints "ready" when
listening on 127.0.0.1:LISTEN_PORT.
"""
import asyncio
import sys
import time

CHUNK = 16 * 1024


async def pipe(reader, writer, delay, rate):
    """Bytes from reader to writer: each chunk leaves when the link is free
    (serialised at `rate` bytes/s) and arrives `delay` s later."""
    queue = asyncio.Queue(maxsize=64)
    link_free = time.monotonic()

    async def send():
        nonlocal link_free
        while True:
            data = await reader.read(CHUNK)
            now = time.monotonic()
            if data:
                link_free = max(now, link_free) + len(data) / rate
                await queue.put((link_free + delay, data))
            else:
                await queue.put((max(now, link_free) + delay, b""))
                return

    async def deliver():
        while True:
            at, data = await queue.get()
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(send(), deliver())


async def main():
    port, host, target_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    delay = float(sys.argv[4] if len(sys.argv) > 4 else 25) / 1000
    rate = float(sys.argv[5] if len(sys.argv) > 5 else 20) * 1e6 / 8

    async def handle(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(host, target_port)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(
                pipe(client_r, server_w, delay, rate),
                pipe(server_r, client_w, delay, rate),
            )
        except (ConnectionError, OSError):
            pass
        finally:
            client_w.close()
            server_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
