"""Methods. Importing this package registers every built-in method in the one registry."""

from core.models import ae  # noqa: F401 - registers ae-l2, ae-ssim
from core.models import patchcore  # noqa: F401 - registers patchcore
from core.models import memae  # noqa: F401 - registers memae
from core.models import trustmae  # noqa: F401 - registers trustmae
from core.models import cmaae  # noqa: F401 - registers cmaae
from core.models import ndpnet  # noqa: F401 - registers ndpnet
from core.models import i3ad  # noqa: F401 - registers i3ad
from core.models.base import AnomalyModel, MethodConfig
from core.models.registry import MethodSpec, build_from_config, build_model, get_method, list_methods, register

__all__ = ["AnomalyModel", "MethodConfig", "MethodSpec", "build_from_config", "build_model", "get_method",
           "list_methods", "register"]
