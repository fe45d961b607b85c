"""`python -m services.scoring`: run the service until SIGTERM."""

from services.scoring.app import build
from shared.runtime import main

if __name__ == "__main__":
    main(build())
