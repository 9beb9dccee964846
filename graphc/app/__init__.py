"""The command line and the demo: what a user runs, built on the API."""
