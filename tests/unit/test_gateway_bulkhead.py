"""The shadow bulkhead bounds bytes as well as jobs, and reports every job it did not finish."""

import asyncio

from hub.gateway.bulkhead import Bulkhead


def test_the_byte_budget_drops_what_would_exceed_it_and_frees_it_when_jobs_end():
    async def run():
        release = asyncio.Event()
        bh = Bulkhead(max_concurrent=2, max_queue=100, max_bytes=50)
        await bh.start()

        async def job():
            await release.wait()

        accepted = [bh.submit(job, 10) for _ in range(24)]  # 24 bodies of 10 "MB" against a hung shadow
        assert accepted == [True] * 5 + [False] * 19 and bh.bytes == 50
        assert bh.stats["dropped_bytes"] == 19
        release.set()
        await bh.join(5)
        assert bh.bytes == 0 and bh.submit(job, 10)
        await bh.join(5)
        await bh.close()

    asyncio.run(run())


def test_close_reports_queued_and_running_jobs_to_their_drop_callbacks():
    async def run():
        dropped = []
        bh = Bulkhead(max_concurrent=1, max_queue=10)
        await bh.start()

        async def job():
            await asyncio.sleep(30)

        for i in range(4):
            assert bh.submit(job, 1, lambda reason, i=i: dropped.append((i, reason)))
        await asyncio.sleep(0)  # the first one starts
        await bh.close(grace=0.05)
        assert sorted(i for i, _ in dropped) == [0, 1, 2, 3] and bh.bytes == 0
        assert {reason for _, reason in dropped} == {"the gateway stopped"}

    asyncio.run(run())
