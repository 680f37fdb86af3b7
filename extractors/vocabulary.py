"""Load and validate data/vocabulary.json, the map from schema keys to words.

The vocabulary is data, edited by people who read abstracts rather than code, so a
mistake in it must fail loudly on load with the entry named, not silently produce a
concept ruler that misses a key. Rule files beside it (concept_rules.json,
context_rules.json, relevance_rules.json) are read through :func:`load_data` too.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

logger = logging.getLogger("cryokb")

ENTRY_FIELDS = {
    "label": str,
    "field": str,
    "definition": str,
    "synonyms": list,
    "abbreviations": list,
    "variants": list,
    "mesh": (str, type(None)),
    "ncit": (str, type(None)),
    "umls": (str, type(None)),
}
IDENTIFIER_PATTERNS = {
    "mesh": re.compile(r"^D\d{6}(\d{3})?$"),
    "ncit": re.compile(r"^C\d+$"),
    "umls": re.compile(r"^C\d{7}$"),
}
KEY_PATTERN = re.compile(r"^[a-z][a-z_]*$")

# The fields whose keys the concept ruler finds in the text.
CONCEPT_FIELDS = (
    "approach", "lesion_types", "anatomic_sites", "indications", "guidance", "treatments",
)


class VocabularyError(ValueError):
    """The vocabulary or a rule file is malformed; the message names the file and entry."""


@dataclass(frozen=True)
class Entry:
    key: str
    field: str
    label: str
    definition: str
    synonyms: tuple[str, ...]
    abbreviations: tuple[str, ...]
    variants: tuple[str, ...]
    mesh: str | None
    ncit: str | None
    umls: str | None

    @property
    def phrases(self) -> tuple[str, ...]:
        """Everything matched case-insensitively: synonyms and their variants."""
        return self.synonyms + self.variants


def _data_path(name: str):
    """The data file ``name``, from the installed package or, in a checkout, ``data/``."""
    try:
        import cryokb_data
    except ImportError:  # a checkout not installed: data/ is the same package
        import data as cryokb_data
    return cryokb_data.path(name)


def load_data(name: str) -> dict:
    """Read the JSON data file ``name``; raise VocabularyError when missing or broken."""
    path = _data_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise VocabularyError(f"{name}: data file not found") from error
    except json.JSONDecodeError as error:
        raise VocabularyError(f"{name}: not valid JSON at line {error.lineno}: {error.msg}") from error


def load_section(name: str, section: str, required, error: type[Exception], optional=("_about",)) -> dict:
    """The one top-level ``section`` of rule file ``name``, its keys checked.

    The number, outcome, sample-size and design rules each keep one section; a key
    missing or unknown raises ``error`` naming the file and the keys.
    """
    try:
        data = load_data(name).get(section)
    except VocabularyError as exc:
        raise error(str(exc)) from exc
    if not isinstance(data, dict):
        raise error(f"{name}: top-level key '{section}' missing")
    unknown = set(data) - set(required) - set(optional)
    missing = set(required) - set(data)
    if unknown or missing:
        raise error(f"{name}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    return data


def require(raw: dict, where: str, *keys: str) -> dict:
    """Check that rule file ``where`` has each dotted key ("guidance.window"); returns raw."""
    for dotted in keys:
        node = raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise VocabularyError(f"{where}: missing {dotted!r}")
            node = node[part]
    return raw


def validate_entry(field: str, key: str, entry: dict, where: str = "vocabulary.json") -> Entry:
    """Check one entry against ENTRY_FIELDS and return it as an Entry."""
    name = f"{where}: {field}.{key}"
    if not KEY_PATTERN.match(key):
        raise VocabularyError(f"{name}: key must be lower_snake_case")
    if not isinstance(entry, dict):
        raise VocabularyError(f"{name}: entry must be an object")
    unknown = set(entry) - set(ENTRY_FIELDS)
    if unknown:
        raise VocabularyError(f"{name}: unknown attribute(s) {sorted(unknown)}")
    for attribute, kind in ENTRY_FIELDS.items():
        if attribute not in entry:
            raise VocabularyError(f"{name}: missing attribute {attribute!r}")
        if not isinstance(entry[attribute], kind):
            raise VocabularyError(f"{name}: {attribute!r} has the wrong type")
    if entry["field"] != field:
        raise VocabularyError(f"{name}: 'field' says {entry['field']!r}")
    if not entry["definition"].strip() or not entry["synonyms"]:
        raise VocabularyError(f"{name}: needs a definition and at least one synonym")
    for attribute in ("synonyms", "abbreviations", "variants"):
        for term in entry[attribute]:
            if not isinstance(term, str) or not term.strip():
                raise VocabularyError(f"{name}: empty or non-text term in {attribute!r}")
    for attribute, pattern in IDENTIFIER_PATTERNS.items():
        value = entry[attribute]
        if value is not None and not pattern.match(value):
            raise VocabularyError(f"{name}: {attribute} {value!r} is not a valid identifier")
    return Entry(
        key=key,
        field=field,
        label=entry["label"],
        definition=entry["definition"],
        synonyms=tuple(entry["synonyms"]),
        abbreviations=tuple(entry["abbreviations"]),
        variants=tuple(entry["variants"]),
        mesh=entry["mesh"],
        ncit=entry["ncit"],
        umls=entry["umls"],
    )


class Vocabulary:
    """Validated entries by field and key."""

    def __init__(self, raw: dict, where: str = "vocabulary.json"):
        if not isinstance(raw, dict) or set(raw) - {"version", "note", "fields"}:
            raise VocabularyError(f"{where}: top level must be {{version, note, fields}}")
        if not isinstance(raw.get("version"), str) or not isinstance(raw.get("fields"), dict):
            raise VocabularyError(f"{where}: needs a 'version' string and a 'fields' object")
        self.version = raw["version"]
        self.fields: dict[str, dict[str, Entry]] = {}
        for field, entries in raw["fields"].items():
            if not isinstance(entries, dict) or not entries:
                raise VocabularyError(f"{where}: field {field!r} must be a non-empty object")
            self.fields[field] = {
                key: validate_entry(field, key, entry, where) for key, entry in entries.items()
            }

    def keys(self, field: str) -> list[str]:
        return sorted(self.fields.get(field, {}))

    def entry(self, field: str, key: str) -> Entry:
        try:
            return self.fields[field][key]
        except KeyError:
            raise VocabularyError(f"vocabulary.json: no entry {field}.{key}") from None

    def entries(self, fields=CONCEPT_FIELDS):
        """Every entry of ``fields``, in file order."""
        for field in fields:
            yield from self.fields.get(field, {}).values()


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """The project's vocabulary, read and validated once per process."""
    vocabulary = Vocabulary(load_data("vocabulary.json"))
    logger.debug("vocabulary %s: %d fields", vocabulary.version, len(vocabulary.fields))
    return vocabulary


def schema_keys_from_markdown(text: str) -> dict[str, set[str]]:
    """The schema's key lists, read from EVIDENCE_SCHEMA.md's prose and tables.

    Used by the tests to prove that the vocabulary and the schema agree, so it parses
    the document the way a reader does: the backticked keys after each field's row, the
    lesion and site sections, and the outcome table.
    """
    def ticks(s: str) -> list[str]:
        return [k for k in re.findall(r"`([a-z][a-z_]*)`", s)]

    keys: dict[str, set[str]] = {}
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|[^|]*\|(.*)\|\s*$", text, re.M)}
    for field in ("approach", "indications", "guidance", "treatments", "study_design"):
        keys[field] = set(ticks(rows.get(field, "")))
    sections = {m.group(1).strip(): m.group(2) for m in re.finditer(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S)}
    keys["lesion_types"] = set(re.findall(r"(?:^|, )`([a-z_]+)`", sections.get("Lesion types", ""), re.M))
    keys["anatomic_sites"] = set(re.findall(r"(?:^|, )`([a-z_]+)`", sections.get("Anatomic sites", ""), re.M))
    outcomes = sections.get("Outcomes", "")
    keys["outcome_measures"] = set(re.findall(r"^\| `([a-z_]+)` \|", outcomes, re.M))
    measure_rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z_]+)` \|(.*)$", outcomes, re.M)}
    keys["complication_grades"] = set(re.findall(r"`(major|minor|any)`", outcomes))
    keys["pain_scales"] = set(re.findall(r"scale \(([^)]*)\)", measure_rows.get("pain_score", "")) and
                              ticks(re.search(r"scale \(([^)]*)\)", measure_rows["pain_score"]).group(1)))
    directions = set()
    for measure in ("analgesic_use", "quality_of_life"):
        found = re.search(r"direction \(([^)]*)\)", measure_rows.get(measure, ""))
        if found:
            directions |= set(ticks(found.group(1)))
    keys["directions"] = directions
    return keys
