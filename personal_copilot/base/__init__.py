"""The embedded default base model: shipped in the package, rebuilt from its recorded recipe by
`pcopilot base build`. Importing it imports no torch (the modules below import it inside functions)."""

from personal_copilot.base.corpus import (
    PACKAGE_EXCLUDES,
    STDLIB_EXCLUDES,
    STDLIB_REPO,
    installed_packages,
    stdlib_dir,
    stdlib_module,
)
from personal_copilot.base.measure import model_nats, read_texts
from personal_copilot.base.recipe import RECIPES, BaseRecipe, RecipeName
from personal_copilot.base.shipped import (
    BASE_ALIAS,
    ENV_VAR,
    base_model_dir,
    measured_fim_layout,
    read_base,
    sha256_of,
    shipped_dir,
)

__all__ = [
    "BASE_ALIAS",
    "ENV_VAR",
    "PACKAGE_EXCLUDES",
    "RECIPES",
    "STDLIB_EXCLUDES",
    "STDLIB_REPO",
    "BaseRecipe",
    "RecipeName",
    "base_model_dir",
    "installed_packages",
    "measured_fim_layout",
    "model_nats",
    "read_base",
    "read_texts",
    "sha256_of",
    "shipped_dir",
    "stdlib_dir",
    "stdlib_module",
]
