"""Only for what pyproject.toml cannot say: ship the top-level ``migrations/`` directory as the
package ``svarinn_daemon.migrations`` (in sdists, wheels and editable installs, and in the
container image, whose build context lets setup.py and migrations/ in for this reason)."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["svarinn_daemon", "svarinn_daemon.*"]),
        "svarinn_daemon.migrations",
        "svarinn_daemon.migrations.versions",
    ],
    package_dir={"svarinn_daemon.migrations": "migrations"},
)
