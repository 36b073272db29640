"""The test suite: one folder per package, e2e/ for whole-daemon runs, support/ for helpers."""
