"""Package discovery for the three top-level folders that install under other names.

DESIGN.md puts the built-in plugins in `services/`, their defaults in `configs/` and
their manifests in `kubes/`. Installed as-is they would claim generic top-level
module names (a host application's own `services` package would clash), so they
install as `jaseci_like_services`, `jaseci_like_configs` and `jaseci_like_kubes`.
Everything else about the distribution is in pyproject.toml.
"""

from setuptools import find_packages, setup

MAPPED = {
    "jaseci_like_services": "services",
    "jaseci_like_configs": "configs",
    "jaseci_like_kubes": "kubes",
}

packages = find_packages(include=["jaseci_like", "jaseci_like.*"])
for name, folder in MAPPED.items():
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir={"jaseci_like": "jaseci_like", **MAPPED})
