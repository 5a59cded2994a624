"""The one reader of YAML files: the configuration file, the web configuration and the probe
targets all come through here, so that they fail the same way, in one line, naming the file.

PyYAML is imported when a file is read: ``cachewatch serve`` without a file never loads it
(about 0.9 MiB of RSS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class YamlFileError(ValueError):
    """A YAML file that cannot be read or parsed, or a section of the wrong shape (one line;
    never quotes the file's content, which may hold a secret pasted by mistake)."""


def load_yaml_file(path: str, error: type[ValueError] = YamlFileError) -> Any:
    """The parsed document of ``path`` (None when empty); failures raise ``error``."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise error(f"cannot read {path}: {reason}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML") from None


def mapping(value: Any, where: str, error: type[ValueError] = YamlFileError) -> dict[str, Any]:
    """``value`` as a mapping with string keys (None is empty); ``error`` names ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error(f"{where} must be a mapping")
    return {str(key): item for key, item in value.items()}
