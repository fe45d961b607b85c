"""`python -m services.dispatch`: run the service until SIGTERM."""

from services.dispatch.app import build
from shared.runtime import main

if __name__ == "__main__":
    main(build())
