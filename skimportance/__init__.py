"""skimportance: which inputs matter in my Keras neural network?

Variable importance for Keras models, the scikit-learn way. Public names are
loaded on first use, so ``import skimportance`` does not import TensorFlow.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for IDEs and the API docs; at run time names load lazily
    from ._compare import rank_agreement  # noqa: F401
    from ._cv_result import CVImportanceResult  # noqa: F401
    from ._interaction_result import InteractionResult  # noqa: F401
    from ._local_result import LocalResult  # noqa: F401
    from ._mlp import build_mlp  # noqa: F401
    from ._persistence import load  # noqa: F401
    from ._result import ImportanceResult  # noqa: F401
    from .conditional import conditional_importance  # noqa: F401
    from .gradient import gradient_importance  # noqa: F401
    from .html_report import report  # noqa: F401
    from .interactions import interaction_importance  # noqa: F401
    from .local import local_importance  # noqa: F401
    from .loco import loco_importance  # noqa: F401
    from .model_selection import cross_validate_importance, importance_scorer  # noqa: F401
    from .permutation import permutation_importance  # noqa: F401
    from .plotting import ImportanceDisplay  # noqa: F401
    from .probe import probe_importance  # noqa: F401
    from .sage import sage_importance  # noqa: F401
    from .selection import ImportanceEstimator, ImportanceSelector  # noqa: F401
    from .weights import weight_importance  # noqa: F401
    from .wrappers import KerasClassifier, KerasRegressor, from_keras  # noqa: F401

__version__ = "0.1.0"

# public name -> module that defines it (relative: a module shares its name
# with a registered method, and method names live in the registry alone)
_EXPORTS = {
    "KerasClassifier": ".wrappers",
    "KerasRegressor": ".wrappers",
    "from_keras": ".wrappers",
    "ImportanceResult": "._result",
    "CVImportanceResult": "._cv_result",
    "rank_agreement": "._compare",
    "build_mlp": "._mlp",
    "permutation_importance": ".permutation",
    "conditional_importance": ".conditional",
    "weight_importance": ".weights",
    "probe_importance": ".probe",
    "gradient_importance": ".gradient",
    "interaction_importance": ".interactions",
    "InteractionResult": "._interaction_result",
    "local_importance": ".local",
    "LocalResult": "._local_result",
    "loco_importance": ".loco",
    "sage_importance": ".sage",
    "ImportanceEstimator": ".selection",
    "ImportanceSelector": ".selection",
    "cross_validate_importance": ".model_selection",
    "importance_scorer": ".model_selection",
    "ImportanceDisplay": ".plotting",
    "load": "._persistence",
    "report": ".html_report",
}

#: Public result classes: ``load`` imports them so that their types register.
_RESULT_TYPES = (
    "ImportanceResult",
    "CVImportanceResult",
    "InteractionResult",
    "LocalResult",
)

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skimportance' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
