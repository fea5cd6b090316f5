"""The embedded default base model: shipped in the package, rebuilt from a recorded recipe with `pcopilot base build`."""

from personal_copilot.base.recipe import RECIPES, BaseRecipe, RecipeName
from personal_copilot.base.shipped import BASE_ALIAS, ENV_VAR, base_model_dir, sha256_of, shipped_dir

__all__ = ["BASE_ALIAS", "ENV_VAR", "RECIPES", "BaseRecipe", "RecipeName", "base_model_dir", "sha256_of", "shipped_dir"]
