"""`python -m services.scoring`: run the service until SIGTERM."""

import asyncio

from services.scoring.app import build

if __name__ == "__main__":
    asyncio.run(build().run())
