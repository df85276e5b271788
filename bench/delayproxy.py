"""bench/delayproxy.py - a TCP proxy on 127.0.0.1 that delays every chunk by
a fixed time in each direction, keeping order, and counts the client's
turns: how often it had to wait for the server.

A turn is counted when the client sends (data or its FIN) after server
bytes were delivered to it and after it had been silent for most of a
round trip (0.8 x 2 x delay). A client answering a reply waits a whole
round trip, so each such wait is one turn; a client streaming a body while
replies trickle back is never silent that long, so a pipelined reply is
not mistaken for a wait. The first flight (ClientHello, or the wait for
the plaintext greeting) follows no server bytes... except the greeting,
which is a turn like any other. TCP's own handshake is not seen: the
kernel completes it with the proxy at once, so the caller adds 1 for it.

(netem would delay in the kernel, but needs the sch_netem module, which
this machine's kernel lacks.) Runs in a thread; stop() ends it and every
connection."""
import asyncio
import threading
import time


class ConnStats:
    def __init__(self):
        self.turns = 0
        self.c2s = 0
        self.s2c = 0
        self.closed = False
        self.timeline = []             # (ms since open, "C" or "S" read by the proxy,
                                       #  octets (-1: reset), turn?)
        self._t0 = time.monotonic()
        self._last_c2s = None          # monotonic time of the client's last send
        self._delivered = False        # server bytes reached the client since


class DelayProxy:
    def __init__(self, target_port, delay_s):
        self.target_port, self.delay = target_port, delay_s
        self.port = None
        self.conns = []
        self._taken = 0
        self._lock = threading.Lock()
        self._tasks = set()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("delay proxy did not start")

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._conn, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.server = server
        ready.set()
        self.loop.run_forever()

    def _client_sent(self, st):
        now = time.monotonic()
        turn = st._delivered and (st._last_c2s is None or now - st._last_c2s >= 1.6 * self.delay)
        if turn:
            st.turns += 1
        st._delivered = False
        st._last_c2s = now
        return turn

    async def _pipe(self, reader, writer, st, from_client):
        queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    break
                writer.write(data)
                await writer.drain()
                if not from_client:
                    st._delivered = True
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass

        task = asyncio.ensure_future(send())
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), 60)
                turn = False
                if from_client:
                    turn = self._client_sent(st)
                    st.c2s += len(data)
                else:
                    st.s2c += len(data)
                st.timeline.append((round((time.monotonic() - st._t0) * 1000, 1),
                                    "C" if from_client else "S", len(data), turn))
                await queue.put((time.monotonic() + self.delay, data or None))
                if not data:
                    break
        except (OSError, asyncio.TimeoutError) as e:
            if from_client and isinstance(e, OSError):
                # A reset is the client's last send: it closed with our bytes
                # unread (Python's ssl does, after the reply to QUIT).
                turn = self._client_sent(st)
                st.timeline.append((round((time.monotonic() - st._t0) * 1000, 1), "C", -1, turn))
            await queue.put((0, None))
        try:
            await task
        except OSError:
            pass

    async def _conn(self, creader, cwriter):
        st = ConnStats()
        with self._lock:
            self.conns.append(st)
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            cwriter.close()
            st.closed = True
            return
        await asyncio.gather(self._pipe(creader, swriter, st, True),
                             self._pipe(sreader, cwriter, st, False),
                             return_exceptions=True)
        cwriter.close()
        swriter.close()
        st.closed = True

    def take(self, timeout=5.0):
        """The connections made since the last take(), once all are closed
        (or timeout seconds have passed)."""
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                new = self.conns[self._taken:]
            if all(c.closed for c in new) or time.monotonic() > end:
                with self._lock:
                    self._taken += len(new)
                return new
            time.sleep(0.01)

    def stop(self):
        def close_all():
            self.server.close()
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
            self.loop.call_later(0.05, self.loop.stop)
        self.loop.call_soon_threadsafe(close_all)
        self.thread.join(5)
