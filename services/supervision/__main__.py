"""`python -m services.supervision`: run the service until SIGTERM."""

from services.supervision.app import build
from shared.runtime import main

if __name__ == "__main__":
    main(build())
