"""minidock: a small, real container runtime with Docker-faithful networking.

Read ../shared/DESIGN.md (in the steering repo) and README.md for the architecture.
Nothing is imported here: the start path of every container pays for each import.
"""

__version__ = "0.1.0"
