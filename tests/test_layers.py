"""The import arrows of the README's layout run one way: each layer's modules import
nothing from the layers above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (the modules of a layer, as paths under the repository, and the packages they must not
# import). app/files/ is the file domain's home beside app/services/.
RULES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("app/web",), ("app.api",)),
    (("app/api",), ("app.web",)),
    (("app/services", "app/files"), ("app.api", "app.web", "app.dav")),
    # WebDAV is a door beside the API and the pages: neither imports the other.
    (("app/dav",), ("app.api", "app.web")),
    (("app/api", "app/web"), ("app.dav",)),
    (("app/schemas.py",), ("app.api", "app.web")),
    # What the services stand on.
    (
        (
            "app/storage",
            "app/database",
            "app/models.py",
            "app/extensions.py",
            "app/config.py",
            "app/security.py",
            "app/units.py",
            "app/libc.py",
            "app/content_disposition.py",
        ),
        ("app.api", "app.web", "app.services", "app.files", "app.schemas", "app.errors"),
    ),
    (("jobs",), ("app.api", "app.web")),
    # RQ names the jobs by their dotted path: the application never imports them.
    (("app",), ("jobs",)),
]


def modules_of(place: str) -> list[Path]:
    """The Python files of a package directory (recursively) or the one module named."""
    path = ROOT / place
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    return [path] if path.exists() else []


def module_name(path: Path) -> str:
    """The dotted name of a module file under the repository root."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it, relative imports made absolute; for
    `from X import y`, both X and X.y (y may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    """Whether a dotted module name is the package or inside it."""
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize(
    ("places", "forbidden"), RULES, ids=[",".join(places) for places, _ in RULES]
)
def test_a_layer_imports_nothing_from_above_it(
    places: tuple[str, ...], forbidden: tuple[str, ...]
) -> None:
    """No module of the layer imports a forbidden package."""
    files = [path for place in places for path in modules_of(place)]
    assert files, f"no modules found under {places}"
    leaks = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imported_names(path)
        if any(within(name, package) for package in forbidden)
    )
    assert not leaks, "\n".join(leaks)


def test_relative_imports_are_resolved() -> None:
    """The walk above sees through relative imports (else it would pass vacuously)."""
    names = imported_names(ROOT / "app" / "api" / "files.py")
    assert "app.schemas" in names
    assert "app.files.intake" in names
    assert "app.api.inputs" in names
