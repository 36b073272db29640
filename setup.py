"""Only for what pyproject.toml cannot say: ship the top-level ``migrations/`` directory as the
package ``svarinn_daemon.migrations`` (in wheels, and mapped in editable installs)."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["svarinn_daemon", "svarinn_daemon.*"]),
        "svarinn_daemon.migrations",
    ],
    package_dir={"svarinn_daemon.migrations": "migrations"},
)
