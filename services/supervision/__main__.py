"""`python -m services.supervision`: run the service until SIGTERM."""

import asyncio

from services.supervision.app import build

if __name__ == "__main__":
    asyncio.run(build().run())
