"""Validation checkpoints: what an output must be before the next agent gets it.

A checkpoint (``validate:`` on a step, ``gate:`` on a construct) checks, in this order:

1. error detection: the output reports a non-empty ``blocking_errors`` list;
2. completeness: ``required`` keys, a JSON Schema (``schema``), a pydantic model (``model``);
3. quality: ``quality.score`` (``${{ output.KEY }}`` or ``module:function``) at least
   ``quality.at_least``, or ``quality.check`` (``module:function`` returning ``True`` or the
   reason it fails).

Integration readiness, the next agent's input schema, is a checkpoint on the next step's side:
agents may declare ``input_schema``; the engine checks the handoff against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pydantic

from counterpoint.agents.python import import_function
from counterpoint.errors import AgentConfigError
from counterpoint.model.refs import parse_reference
from counterpoint.model.workflow import Validation

__all__ = ["Checkpoint", "CheckpointFailed"]


class CheckpointFailed(Exception):
    """An output did not pass; ``reasons`` say why."""

    def __init__(self, where: str, reasons: list[str], output: object) -> None:
        self.where = where
        self.reasons = reasons
        self.output = output
        shown = json.dumps(output, default=repr)
        if len(shown) > 300:
            shown = shown[:297] + "..."
        super().__init__(f"{where} failed: {'; '.join(reasons)}; the output was {shown}")


@dataclass(slots=True)
class Checkpoint:
    """A compiled ``Validation``: build once, ``check`` every output."""

    where: str
    spec: Validation
    schema: jsonschema.protocols.Validator | None
    model: type[pydantic.BaseModel] | None
    score: Callable[[object], object] | None
    predicate: Callable[[object], object] | None

    @classmethod
    def build(cls, where: str, spec: Validation, base_dir: Path) -> Checkpoint:
        """Raises ``AgentConfigError`` for a schema, model or function that cannot be used."""
        schema = None
        if spec.json_schema is not None:
            try:
                kind = jsonschema.validators.validator_for(spec.json_schema)
                kind.check_schema(spec.json_schema)
            except jsonschema.SchemaError as exc:
                raise AgentConfigError(f"{where}: the schema is not valid: {exc.message}") from None
            schema = kind(spec.json_schema)
        model = None
        if spec.model is not None:
            found = import_function(spec.model, base_dir)
            if not (isinstance(found, type) and issubclass(found, pydantic.BaseModel)):
                raise AgentConfigError(f"{where}: {spec.model!r} is not a pydantic model")
            model = found
        score = predicate = None
        quality = spec.quality
        if quality is not None:
            if quality.score is not None:
                score = _scorer(quality.score, base_dir)
                if quality.at_least is None:
                    raise AgentConfigError(f"{where}: quality.score needs at_least")
            if quality.check is not None:
                predicate = import_function(quality.check, base_dir)
        return cls(where, spec, schema, model, score, predicate)

    def check(self, output: object) -> None:
        """Raises ``CheckpointFailed`` with every reason the output fails."""
        reasons: list[str] = []
        spec = self.spec
        if spec.blocking_errors and isinstance(output, dict):
            blocking = output.get("blocking_errors")
            if blocking:
                reasons.append(f"the agent reported blocking errors: {blocking}")
        if spec.required:
            if not isinstance(output, dict):
                reasons.append(f"expected a mapping with {', '.join(spec.required)}")
            else:
                missing = [k for k in spec.required if output.get(k) in (None, "", [], {})]
                if missing:
                    reasons.append(f"missing or empty: {', '.join(missing)}")
        if self.schema is not None:
            found = self.schema.iter_errors(output)  # type: ignore[arg-type]
            for error in sorted(found, key=lambda e: list(e.path)):
                at = "/".join(map(str, error.absolute_path)) or "the output"
                reasons.append(f"schema: {at}: {error.message}")
        if self.model is not None:
            try:
                self.model.model_validate(output)
            except pydantic.ValidationError as exc:
                for e in exc.errors():
                    at = ".".join(map(str, e["loc"])) or "the output"
                    reasons.append(f"model {self.model.__name__}: {at}: {e['msg']}")
        if (
            self.score is not None
            and spec.quality is not None
            and spec.quality.at_least is not None
        ):
            value = self.score(output)
            if not isinstance(value, int | float) or isinstance(value, bool):
                reasons.append(f"quality score is not a number: {value!r}")
            elif value < spec.quality.at_least:
                reasons.append(f"quality score {value:g} is below {spec.quality.at_least:g}")
        if self.predicate is not None:
            verdict = self.predicate(output)
            if verdict is not True and verdict is not None:
                reasons.append(f"quality check: {verdict or 'failed'}")
        if reasons:
            raise CheckpointFailed(self.where, reasons, output)


def _scorer(text: str, base_dir: Path) -> Callable[[object], object]:
    stripped = text.strip()
    if stripped.startswith("${{") and stripped.endswith("}}"):
        ref = parse_reference(stripped[3:-2])
        if ref.root != "output":
            raise AgentConfigError(
                f"a score refers to the output: ${{{{ output.KEY }}}}, not {text!r}"
            )

        def score(output: object) -> object:
            value = output
            for key in ref.path:
                if isinstance(value, dict):
                    value = value.get(str(key))
                elif isinstance(value, list) and isinstance(key, int) and key < len(value):
                    value = value[key]
                else:
                    return None
            return value

        return score
    return import_function(stripped, base_dir)
