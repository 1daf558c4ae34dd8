"""Every public class of the provider says what it is, and what each constructor argument means."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import airflow_provider_proteus

#: Modules users never import: the emulator's internals and the command-line entry point.
SKIPPED = {"airflow_provider_proteus.testing.__main__"}


def public_classes() -> list[type]:
    classes: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(airflow_provider_proteus.__path__, "airflow_provider_proteus."):
        if module_info.name in SKIPPED or any(part.startswith("_") for part in module_info.name.split(".")):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_"):
                classes[f"{module.__name__}.{name}"] = value
    return [classes[key] for key in sorted(classes)]


def constructor_arguments(cls: type) -> list[str]:
    """The arguments of the class's own ``__init__`` (or dataclass fields), without self and catch-alls."""
    if "__init__" not in vars(cls):
        return []
    parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    return [
        parameter.name
        for parameter in parameters
        if parameter.name != "self"
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


CLASSES = public_classes()


def test_the_package_has_public_classes_to_check() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"ProteusHook", "SubmitJobOperator", "ProjectStageSensor", "ProjectStageTrigger"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_public_class_documents_itself_and_every_constructor_argument(cls: type) -> None:
    docstring = cls.__doc__ or ""
    assert docstring.strip(), f"{cls.__name__} has no docstring"
    # An argument a subclass passes on to its base is documented once, on the base.
    ours = [base for base in cls.__mro__ if base.__module__.startswith("airflow_provider_proteus")]
    texts = [
        f"{base.__doc__ or ''}\n{vars(base)['__init__'].__doc__ or ''}"
        for base in ours
        if "__init__" in vars(base)
    ]
    documented = set(re.findall(r":param (\w+):", "\n".join([docstring, *texts])))
    missing = [name for name in constructor_arguments(cls) if name not in documented]
    assert missing == [], f"{cls.__name__} does not document {missing}"
