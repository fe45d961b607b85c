"""`python -m services.intake`: run the service until SIGTERM."""

from services.intake.app import build
from shared.runtime import main

if __name__ == "__main__":
    main(build())
