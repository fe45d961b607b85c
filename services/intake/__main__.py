"""`python -m services.intake`: run the service until SIGTERM."""

import asyncio

from services.intake.app import build

if __name__ == "__main__":
    asyncio.run(build().run())
