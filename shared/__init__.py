"""The contract and the plumbing every service uses."""
