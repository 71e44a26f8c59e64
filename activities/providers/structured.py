"""Helpers for provider-native structured ("typed") output.

OpenAI's ``response_format`` ``json_schema`` can constrain decoding to the schema (``strict:
true``), but only for a subset of JSON Schema; a schema outside it is rejected with a 400,
which would fail the run. ``is_strict_compatible`` decides whether a schema is inside that
subset, conservatively: when in doubt it says no, and the schema is then sent with ``strict:
false`` (the model is guided by it but not constrained; the workflow still validates the
answer and asks for repairs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_UNSUPPORTED_IN_STRICT = frozenset(
    {
        # composition: only anyOf is supported
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        # objects
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        # arrays
        "prefixItems",
        "unevaluatedItems",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
        # strings: not among the keywords OpenAI lists as supported
        "minLength",
        "maxLength",
        # the API answers "'default' is not permitted"
        "default",
    }
)
"""Keywords OpenAI's strict mode does not accept (or does not document as accepted)."""

_SUBSCHEMA_MAPS = ("$defs", "definitions", "properties")
"""Keywords whose value maps names to subschemas."""


def is_strict_compatible(schema: Mapping[str, Any]) -> bool:
    """Whether OpenAI accepts ``schema`` with ``strict: true``.

    True when the root is an object schema and, in the root and every subschema reachable
    through ``$defs``/``definitions``, ``properties``, ``items`` and ``anyOf``:

    - every object (``"type": "object"``, or any schema with ``properties``) has
      ``"additionalProperties": false`` and lists every property in ``required``;
    - no keyword outside the strict subset appears (``allOf``, ``oneOf``, ``default``,
      ``minLength``, ``patternProperties``, ... see ``_UNSUPPORTED_IN_STRICT``);
    - a ``$ref`` stands alone (the API rejects ``$ref`` with sibling keywords, which pydantic
      emits for a described nested model);
    - every subschema is an object, not a boolean schema; ``items`` is a single schema.

    Pydantic's ``model_json_schema()`` usually fails the first rule: it omits
    ``additionalProperties`` and leaves fields with defaults out of ``required``. ``$defs`` and
    ``$ref`` themselves are fine. Pure: ``schema`` is only read.
    """
    if not isinstance(schema, Mapping) or not _is_object(schema):
        return False  # the root must be an object, not a union or a reference
    return _strict(schema, depth=0)


_MAX_DEPTH = 64
"""Deeper than this is not worth checking: far beyond the API's own nesting limit."""


def _is_object(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind):
        return True
    return "properties" in schema


def _strict(schema: object, depth: int) -> bool:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return False
    if _UNSUPPORTED_IN_STRICT.intersection(schema):
        return False
    if "$ref" in schema and len(schema) > 1:
        return False
    if _is_object(schema):
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if schema.get("additionalProperties") is not False:
            return False
        if not isinstance(properties, Mapping) or not isinstance(required, list):
            return False
        if set(required) != set(properties):
            return False
    for keyword in _SUBSCHEMA_MAPS:
        subschemas = schema.get(keyword)
        if subschemas is None:
            continue
        if not isinstance(subschemas, Mapping):
            return False
        if not all(_strict(sub, depth + 1) for sub in subschemas.values()):
            return False
    if "items" in schema and not _strict(schema["items"], depth + 1):
        return False
    variants = schema.get("anyOf")
    if variants is not None:
        if not isinstance(variants, list) or not variants:
            return False
        if not all(_strict(variant, depth + 1) for variant in variants):
            return False
    return True
