"""Deterministic simulated model outputs (reference §5.8).

Everything here is a pure function of a seeded ``random.Random`` so the same request always
yields the same text, which lets tests compare outputs across runs and processes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import uuid
from typing import Any

SIM_PREFIX = "[simulated]"

VOCAB: tuple[str, ...] = (
    "alpha", "amber", "anchor", "apple", "arch", "atlas", "basin", "beacon", "birch", "bridge",
    "canyon", "cedar", "circle", "cobalt", "comet", "coral", "delta", "dune", "ember", "falcon",
    "fern", "field", "fjord", "garnet", "glacier", "harbor", "hazel", "horizon", "island", "ivory",
    "jade", "juniper", "kettle", "lagoon", "lantern", "linen", "maple", "meadow", "mesa", "nectar",
    "nova", "oak", "orbit", "pebble", "pine", "prairie", "quartz", "raven", "reef", "ridge",
    "river", "saffron", "sierra", "slate", "spruce", "summit", "tidal", "timber", "tundra",
    "valley", "willow", "winter", "yarrow", "zephyr",
)  # fmt: skip

MAX_DEPTH = 6  # beyond this, only required properties / minItems so recursive schemas terminate


class SchemaError(ValueError):
    """The schema cannot be turned into a grammar; real Ollama answers 500 with this text."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("invalid JSON schema in format" + (f": {detail}" if detail else ""))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def seeded_rng(*parts: Any) -> random.Random:
    """sha256 over the request's identity -> RNG; the spec's determinism contract."""
    h = hashlib.sha256("\x00".join(canonical_json(p) for p in parts).encode()).hexdigest()
    return random.Random(int(h[:16], 16))


def split_tokens(text: str, size: int = 4) -> list[str]:
    """~4 characters per token, like a BPE tokenizer on JSON, so truncation cuts mid-value."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def text_tokens(rng: random.Random, lead: str = SIM_PREFIX) -> list[str]:
    """Plain prose: the marker token, then one word (with leading space) per token."""
    n = 8 + rng.randrange(56)
    words = [rng.choice(VOCAB) for _ in range(n)]
    words[-1] += "."
    return [lead] + [" " + w for w in words]


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def json_mode_value(rng: random.Random) -> dict[str, Any]:
    """format="json" without a schema: any object is valid, so say it is simulated."""
    return {
        "answer": f"{SIM_PREFIX} {words(rng, 3 + rng.randrange(8))}",
        "id": rng.randrange(1, 10_000),
    }


def dump_json(value: Any) -> str:
    # Default separators (", " / ": ") look like what models emit under a JSON grammar.
    return json.dumps(value, ensure_ascii=False)


# --- JSON-schema instance generator -----------------------------------------------------------


def generate_instance(schema: Any, rng: random.Random) -> Any:
    """A value valid against ``schema`` (the subset Ollama's grammar converter supports)."""
    if schema is True or schema == {}:
        return f"{SIM_PREFIX} {words(rng, 2)}"
    if not isinstance(schema, dict):
        raise SchemaError("schema must be an object")
    return _Gen(schema, rng).gen(schema, 0)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """allOf / anyOf-with-siblings merge: union properties and required, tighten bounds."""
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key in ("minimum", "minLength", "minItems", "exclusiveMinimum") and key in out:
            out[key] = max(out[key], value)
        elif key in ("maximum", "maxLength", "maxItems", "exclusiveMaximum") and key in out:
            out[key] = min(out[key], value)
        else:
            out[key] = value
    return out


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and (
        schema.get("type") == "null" or schema.get("const", 1) is None
    )


class _Gen:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    # $ref handling: local JSON pointers only (#/$defs/X, #/definitions/X), which is what
    # pydantic's model_json_schema() produces.
    def _lookup(self, ref: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"unsupported $ref {ref!r}")
        node: Any = self.root
        pointer = ref[1:]
        if not pointer:
            return node
        for raw in pointer.lstrip("/").split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise SchemaError(f"unresolvable $ref {ref!r}") from None
        return node

    def resolve(self, schema: Any) -> Any:
        for _ in range(64):
            if not (isinstance(schema, dict) and "$ref" in schema):
                return schema
            target = self._lookup(schema["$ref"])
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            if not isinstance(target, dict):
                return siblings if siblings else target
            schema = _merge(target, siblings) if siblings else target
        raise SchemaError("$ref cycle")

    def gen(self, schema: Any, depth: int) -> Any:
        if schema is True or schema is None:
            return words(self.rng, 2)
        if schema is False:
            raise SchemaError("false schema admits no value")
        if not isinstance(schema, dict):
            raise SchemaError("subschema must be an object")
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return self.gen(schema, depth)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return copy.deepcopy(self.rng.choice(schema["enum"]))
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for sub in schema["allOf"]:
                sub = self.resolve(sub)
                if isinstance(sub, dict):
                    merged = _merge(merged, sub)
            return self.gen(merged, depth)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                base = {k: v for k, v in schema.items() if k not in (key, "default", "title")}
                pick = self._pick_branch([self.resolve(b) for b in branches], depth)
                return self.gen(_merge(base, pick) if isinstance(pick, dict) else pick, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = self._pick_type(kind, depth)
        if kind is None:
            kind = _infer_type(schema)
        handler = {
            "object": self._object,
            "array": self._array,
            "string": self._string,
            "integer": self._integer,
            "number": self._number,
            "boolean": lambda s, d: self.rng.random() < 0.5,
            "null": lambda s, d: None,
        }.get(kind)
        if handler is None:
            raise SchemaError(f"unknown type {kind!r}")
        return handler(schema, depth)

    def _pick_branch(self, branches: list[Any], depth: int) -> Any:
        non_null = [b for b in branches if not _is_null(b)]
        if depth >= MAX_DEPTH:
            nulls = [b for b in branches if _is_null(b)]
            if nulls:
                return nulls[0]
            flat = [b for b in non_null if isinstance(b, dict) and "$ref" not in b]
            if flat:
                return flat[0]
        return self.rng.choice(non_null or branches)

    def _pick_type(self, kinds: list[str], depth: int) -> str:
        non_null = [k for k in kinds if k != "null"] or kinds
        if depth >= MAX_DEPTH:
            scalar = [k for k in kinds if k not in ("object", "array")]
            if scalar:
                return "null" if "null" in scalar else scalar[0]
        return self.rng.choice(non_null)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        extra = schema.get("additionalProperties", True)
        out: dict[str, Any] = {}
        # Schema order, like a grammar-constrained model: all required, a seeded subset of the rest.
        for name, sub in props.items():
            if name in required or (depth < MAX_DEPTH and self.rng.random() < 0.5):
                out[name] = self.gen(sub, depth + 1)
        for name in required:
            if name not in out:
                out[name] = self.gen(extra if isinstance(extra, dict) else {}, depth + 1)
        min_props = int(schema.get("minProperties", 0))
        for name, sub in props.items():
            if len(out) >= min_props:
                break
            out.setdefault(name, self.gen(sub, depth + 1))
        n = 0
        while len(out) < min_props and extra is not False:
            n += 1
            out.setdefault(
                f"extra_{n}", self.gen(extra if isinstance(extra, dict) else {}, depth + 1)
            )
        return out

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # draft-04 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        prefix = prefix if isinstance(prefix, list) else []
        lo = int(schema.get("minItems", 0))
        hi_cfg = schema.get("maxItems")
        hi = int(hi_cfg) if hi_cfg is not None else max(lo, len(prefix)) + 3
        hi = max(lo, min(hi, lo + 6))
        count = lo if depth >= MAX_DEPTH else self.rng.randint(lo, hi)
        if items is False:
            count = min(count, len(prefix))
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else (items if isinstance(items, dict) else {})
            value = self.gen(sub, depth + 1)
            tries = 0
            while unique and value in out and tries < 16:
                value = self.gen(sub, depth + 1)
                tries += 1
            if unique and value in out:
                if len(out) >= lo:
                    break
                continue
            out.append(value)
        return out

    def _string(self, schema: dict[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        maker = _STRING_FORMATS.get(fmt) if isinstance(fmt, str) else None
        text = maker(self.rng) if maker else words(self.rng, 1 + self.rng.randrange(4))
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        while len(text) < lo:
            text += " " + self.rng.choice(VOCAB)
        if hi is not None and len(text) > int(hi):
            text = text[: int(hi)]
        return text + "x" * max(0, lo - len(text))

    def _bounds(self, schema: dict[str, Any], integer: bool) -> tuple[float, float]:
        lo = schema.get("minimum")
        hi = schema.get("maximum")
        xlo = schema.get("exclusiveMinimum")
        xhi = schema.get("exclusiveMaximum")
        step = 1 if integer else 0.01
        if xlo is True and lo is not None:  # draft-04 boolean form
            lo += step
        elif isinstance(xlo, (int, float)) and not isinstance(xlo, bool):
            lo = max(lo, xlo + step) if lo is not None else xlo + step
        if xhi is True and hi is not None:
            hi -= step
        elif isinstance(xhi, (int, float)) and not isinstance(xhi, bool):
            hi = min(hi, xhi - step) if hi is not None else xhi - step
        if lo is None and hi is None:
            lo, hi = 0, 100
        elif lo is None:
            lo = hi - 100
        elif hi is None:
            hi = lo + 100
        if integer:
            lo, hi = math.ceil(lo), math.floor(hi)
        if hi < lo:
            raise SchemaError("empty numeric range")
        return lo, hi

    def _integer(self, schema: dict[str, Any], depth: int) -> int:
        lo, hi = self._bounds(schema, integer=True)
        mult = schema.get("multipleOf")
        if isinstance(mult, (int, float)) and mult > 0:
            k_lo, k_hi = math.ceil(lo / mult), math.floor(hi / mult)
            if k_hi >= k_lo:
                return int(self.rng.randint(k_lo, k_hi) * mult)
        return self.rng.randint(int(lo), int(hi))

    def _number(self, schema: dict[str, Any], depth: int) -> float | int:
        lo, hi = self._bounds(schema, integer=False)
        mult = schema.get("multipleOf")
        if isinstance(mult, (int, float)) and mult > 0:
            k_lo, k_hi = math.ceil(lo / mult), math.floor(hi / mult)
            if k_hi >= k_lo:
                value = self.rng.randint(k_lo, k_hi) * mult
                return int(value) if float(mult).is_integer() else round(value, 12)
        value = round(self.rng.uniform(lo, hi), 2)
        return value if lo <= value <= hi else (lo + hi) / 2


def _infer_type(schema: dict[str, Any]) -> str:
    if any(
        k in schema for k in ("properties", "required", "additionalProperties", "minProperties")
    ):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minLength", "maxLength", "format", "pattern")):
        return "string"
    if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
        return "number"
    return "string"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _date(rng: random.Random) -> str:
    return f"20{rng.randint(20, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _time(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"


_STRING_FORMATS = {
    "date-time": lambda r: f"{_date(r)}T{_time(r)}",
    "date": _date,
    "time": _time,
    "uuid": _uuid,
    "email": lambda r: f"{r.choice(VOCAB)}.{r.randrange(1000)}@example.com",
    "uri": lambda r: f"https://example.com/simulated/{r.choice(VOCAB)}",
    "hostname": lambda r: f"{r.choice(VOCAB)}.example.com",
    "ipv4": lambda r: f"192.0.2.{r.randint(1, 254)}",
    "duration": lambda r: f"PT{r.randint(1, 59)}M",
}


# --- deliberately bad outputs (fault "bad_output") --------------------------------------------


def violate_schema(value: Any, schema: Any) -> Any:
    """Valid JSON that fails the schema: drop a required key, else give the root a wrong type."""
    resolved = _Gen(schema, random.Random(0)).resolve(schema) if isinstance(schema, dict) else None
    if isinstance(value, dict) and isinstance(resolved, dict):
        required = [r for r in resolved.get("required", []) if r in value]
        if required:
            broken = dict(value)
            del broken[required[0]]
            return broken
    if isinstance(value, dict):
        return [f"{SIM_PREFIX} schema violation"]
    return {"unexpected": f"{SIM_PREFIX} schema violation"}


def bad_output_text(kind: str, good_text: str, value: Any, schema: Any) -> str:
    """Text for every bad_output kind except trailing_whitespace (that one needs num_predict)."""
    if kind == "truncated_json":
        return good_text[: max(1, len(good_text) // 2)]
    if kind == "not_json":
        return f"{SIM_PREFIX} Sure! Here is the information you asked for, in plain prose."
    if kind == "fenced_json":
        return "```json\n" + good_text + "\n```"
    if kind == "empty":
        return ""
    if kind == "empty_object":
        return "{}"
    if kind == "schema_violation":
        return dump_json(violate_schema(value, schema))
    return good_text


def scripted_text(scripted: list[tuple[str, str]], prompt: str) -> str | None:
    for pattern, text in scripted:
        if re.search(pattern, prompt):
            return text
    return None
