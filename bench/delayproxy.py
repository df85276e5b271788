"""A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time in each
direction, keeping order: a round trip through it costs 2 x delay, so a
client's wall time divided by that counts its round trips. (netem would do
this in the kernel, but needs the sch_netem module, which this machine
lacks.) Runs in a thread; stop() ends it."""
import asyncio
import threading
import time


class DelayProxy:
    def __init__(self, target_port, delay_s):
        self.target_port, self.delay = target_port, delay_s
        self.port = None
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

    async def _pipe(self, reader, writer):
        queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass

        task = asyncio.ensure_future(send())
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), 30)
                await queue.put((time.monotonic() + self.delay, data or None))
                if not data:
                    break
        except (OSError, asyncio.TimeoutError):
            await queue.put((0, None))
        await task

    async def _conn(self, creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(self._pipe(creader, swriter), self._pipe(sreader, cwriter),
                             return_exceptions=True)
        cwriter.close()
        swriter.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
