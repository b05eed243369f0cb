"""The floor for `batchwan run`: create, poll, download to a file and fsync it; no record.

    python -m bench.minimal_loop BASE_URL ROWS CONCURRENCY POLL_INTERVAL TAG [VIDEO_FOLDER]

Without VIDEO_FOLDER it does not download. It keeps nothing: a crash loses every task id.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

from bench.simproc import MODEL_PATH


async def minimal_loop(
    base: str, rows: int, concurrency: int, interval: float, tag: str, videos: Path | None
) -> None:
    """Create, poll until done, and (given a folder) download each video and fsync it."""
    queue = list(range(rows))
    url = base + MODEL_PATH

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            i = queue.pop()
            body = {"prompt": f"{tag} row {i}: waves", "image": f"https://img.example.com/{i}.jpg",
                    "duration": 5, "resolution": "480P"}  # fmt: skip
            async with session.post(url, json=body) as response:
                task_id = (await response.json())["task_info"]["id"]
            while True:
                await asyncio.sleep(interval)
                async with session.get(f"{url}/{task_id}") as response:
                    answer = await response.json()
                if answer["task_info"]["status"] in ("completed", "succeeded", "failed"):
                    break
            if videos is None or not answer.get("videos"):
                continue
            async with session.get(answer["videos"][0]) as response:
                data = await response.read()
            with (videos / f"{i}.mp4").open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def main() -> None:
    """Parse the arguments and run the loop."""
    base, rows, concurrency, interval, tag, *rest = sys.argv[1:]
    videos = Path(rest[0]) if rest else None
    if videos is not None:
        videos.mkdir(parents=True, exist_ok=True)
    asyncio.run(minimal_loop(base, int(rows), int(concurrency), float(interval), tag, videos))


if __name__ == "__main__":
    main()
