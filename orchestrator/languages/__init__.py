"""Languages as data: what the engine's images declare they run, and how (see registry.py)."""

from orchestrator.languages.model import LABEL, LABEL_IMAGE, Language, expand, parse_label
from orchestrator.languages.registry import (
    ImageInfo,
    LanguageRegistry,
    build_registry,
    fingerprint,
    short_tag,
)
from orchestrator.languages.semver import satisfies

__all__ = [
    "LABEL",
    "LABEL_IMAGE",
    "ImageInfo",
    "Language",
    "LanguageRegistry",
    "build_registry",
    "expand",
    "fingerprint",
    "parse_label",
    "satisfies",
    "short_tag",
]
