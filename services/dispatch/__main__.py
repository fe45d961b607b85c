"""`python -m services.dispatch`: run the service until SIGTERM."""

import asyncio

from services.dispatch.app import build

if __name__ == "__main__":
    asyncio.run(build().run())
