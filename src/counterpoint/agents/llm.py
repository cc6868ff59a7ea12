"""``kind: llm``: a chat model behind any OpenAI-compatible endpoint (a hosted API, Ollama,
vLLM), called with the ``openai`` client.

The endpoint and key come from the environment (``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``,
or the variables the agent names), or the base URL from the workflow; a key is never written
in the workflow, so it never reaches the journal. The user message is the ``prompt``
template rendered with the step's input (by default the input itself, with the outputs of
the steps it needs); ``system`` is the system prompt, to which instructions from feedback are
added; an item of a sequence asked again is told why its earlier answers were not accepted.
With ``output_schema`` (JSON Schema) or ``output_model`` (``module:Model``, pydantic)
the model is asked for JSON, and the answer is parsed and checked before it is handed on: an
answer that does not fit fails the attempt (the step's retries try again).

The tokens the API reports are charged (``ctx.charge``) to the rate limits the step uses that
have a ``tokens`` dimension, and to the rate limits and budgets named in ``charge``. 429 and
5xx answers and lost connections are retried by the client (``retries`` times), honouring
``Retry-After``; each call has a ``timeout``. Without an endpoint, a ``stand_in`` function
(``module:function``) answers instead — an offline stand-in, which its output should say —
and a ``stand_in`` event says so; with neither, the step fails saying what to set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from counterpoint.agents.base import Agent, StepContext
from counterpoint.agents.python import import_function
from counterpoint.errors import AgentConfigError, StepFailed
from counterpoint.model.refs import Template, compile_template, find_references
from counterpoint.model.workflow import AgentSpec, Duration

__all__ = ["LLM", "LlmOptions", "refuse_api_key", "rejection"]

_ROOTS = {"input", "upstream", "step", "run"}


def refuse_api_key(options: object) -> object:
    """Options that write a key in the workflow are refused: it would be kept in the journal."""
    if isinstance(options, dict) and "api_key" in options:
        raise ValueError(
            "api_key: a key is not written in the workflow (it would be kept in the "
            "journal): put it in an environment variable and name it with api_key_env "
            "(default OPENAI_API_KEY)"
        )
    return options


class LlmOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the model's name at the endpoint")
    system: str | None = Field(None, description="the system prompt")
    prompt: str | None = Field(
        None,
        description="the user message, a template (${{ input.KEY }}, ${{ upstream.STEP }}); "
        "default: the input, with the outputs of the steps it needs",
    )
    output_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema the answer must fit (asked for as JSON)"
    )
    output_model: str | None = Field(None, description="module:Model, a pydantic model")
    base_url: str | None = Field(None, description="default: $OPENAI_BASE_URL")
    base_url_env: str = "OPENAI_BASE_URL"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    timeout: Duration = Field(60.0, description="per call")
    retries: int = Field(2, ge=0, description="of 429, 5xx and lost connections, per call")
    charge: list[str] = Field(
        default_factory=list, description="rate limits and budgets the tokens count against"
    )
    stand_in: str | None = Field(
        None, description="module:function that answers when no endpoint is configured"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, value: object) -> object:
        return refuse_api_key(value)

    @field_validator("prompt")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        for _where, ref in find_references(value):
            if isinstance(ref, str):
                raise ValueError(ref)
            if ref.root not in _ROOTS:
                raise ValueError(
                    f"{ref}: an llm prompt can use input.KEY, upstream.STEP, step.id and run.id"
                )
        return value

    @field_validator("output_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            kind = jsonschema.validators.validator_for(value)
            try:
                kind.check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"output_schema is not a JSON Schema: {exc.message}") from None
        return value


class _Llm:
    def __init__(self, options: LlmOptions, base_dir: Path) -> None:
        self.options = options
        self.prompt: Template | None = (
            compile_template(options.prompt) if options.prompt is not None else None
        )
        self.model_type: type[BaseModel] | None = None
        schema = options.output_schema
        if options.output_model is not None:
            model = import_function(options.output_model, base_dir)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise AgentConfigError(f"{options.output_model!r} is not a pydantic model")
            self.model_type = model
            schema = model.model_json_schema()
        self.schema = schema
        self.check = (
            jsonschema.validators.validator_for(schema)(schema) if schema is not None else None
        )
        self.stand_in: Callable[..., object] | None = (
            import_function(options.stand_in, base_dir) if options.stand_in else None
        )

    def __repr__(self) -> str:
        return f"<llm agent model={self.options.model!r}>"

    def endpoint(self) -> tuple[str | None, str | None]:
        o = self.options
        return o.base_url or os.environ.get(o.base_url_env) or None, os.environ.get(
            o.api_key_env
        ) or None

    async def __call__(self, ctx: StepContext) -> object:
        import openai  # here, not at the top: it takes a good part of a second to import

        base_url, key = self.endpoint()
        if base_url is None and key is None:
            return await self._offline(ctx)
        client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=key or "not-needed",  # local servers (Ollama, vLLM) take any key
            max_retries=self.options.retries,
            timeout=self.options.timeout,
        )
        try:
            response = await client.chat.completions.create(**self.request(ctx))
        except openai.APIStatusError as exc:
            code = exc.status_code
            raise StepFailed(
                f"{self.where(base_url)} answered {code}: {_short(exc.message)}",
                retryable=code == 429 or code >= 500,
            ) from None
        except openai.APITimeoutError:
            raise StepFailed(
                f"{self.where(base_url)} did not answer within {self.options.timeout:g}s"
            ) from None
        except openai.APIConnectionError as exc:
            raise StepFailed(f"cannot reach {self.where(base_url)}: {exc}") from None
        except openai.APIResponseValidationError as exc:
            raise StepFailed(f"{self.where(base_url)} gave a malformed answer: {exc}") from None
        except ValueError as exc:  # a body that is not JSON
            raise StepFailed(
                f"{self.where(base_url)} gave a malformed answer: {_short(exc)}"
            ) from None
        finally:
            await client.close()
        return self.answer(ctx, response, base_url)

    def where(self, base_url: str | None) -> str:
        return f"the endpoint {base_url}" if base_url else "the OpenAI API"

    def request(self, ctx: StepContext) -> dict[str, Any]:
        o = self.options
        messages: list[dict[str, str]] = []
        system = "\n\n".join([*([o.system] if o.system else []), *ctx.instructions])
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": self.message(ctx)})
        rejected = ctx.handoff.errors if ctx.handoff is not None else ()
        if rejected:  # a sequence's earlier attempts: say why they were not accepted
            messages.append({"role": "user", "content": rejection(rejected)})
        request: dict[str, Any] = {"model": o.model, "messages": messages}
        if o.temperature is not None:
            request["temperature"] = o.temperature
        if o.max_tokens is not None:
            request["max_tokens"] = o.max_tokens
        if self.schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": self.schema},
            }
        return request

    def message(self, ctx: StepContext) -> str:
        if self.prompt is not None:
            scope = {
                "input": ctx.input,
                "upstream": dict(ctx.upstream),
                "step": {"id": ctx.step_id, "attempt": ctx.attempt},
                "run": {"id": ctx.run_id},
            }
            value = self.prompt(scope)
            return value if isinstance(value, str) else json.dumps(value, default=str)
        if self.options.prompt is not None:  # no references: the text as written
            return self.options.prompt
        if not ctx.upstream:
            return ctx.input if isinstance(ctx.input, str) else json.dumps(ctx.input, default=str)
        return json.dumps({"input": ctx.input, "upstream": dict(ctx.upstream)}, default=str)

    def answer(self, ctx: StepContext, response: Any, base_url: str | None) -> object:
        """The answer's content (parsed and checked when a schema asks for JSON); its tokens
        charged."""
        choices = getattr(response, "choices", None)
        first = choices[0] if isinstance(choices, list) and choices else None
        content = getattr(getattr(first, "message", None), "content", None)
        if not isinstance(content, str):
            raise StepFailed(f"{self.where(base_url)} gave a malformed answer: no message content")
        usage = getattr(response, "usage", None)
        if usage is not None:
            tokens: dict[str, int] = {}
            for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                n = getattr(usage, k, None)
                if n is None:
                    n = 0
                if not isinstance(n, int | float) or isinstance(n, bool) or n < 0:
                    # what the tokens cost must be known: a budget would go uncharged
                    raise StepFailed(
                        f"{self.where(base_url)} gave a malformed answer: usage.{k} is "
                        f"{_short(n, 40)!r}, not a count of tokens"
                    )
                tokens[k] = int(n)
            ctx.emit("llm_usage", {"model": self.options.model, **tokens})
            amounts = {"tokens": float(tokens["total_tokens"])}
            ctx.charge("*", amounts)  # the rate limits the step uses with a tokens dimension
            for name in self.options.charge:
                ctx.charge(name, amounts)
        if self.schema is None:
            return content
        return self.parse(content)

    def parse(self, content: str) -> object:
        try:
            value = json.loads(content)
        except ValueError:
            raise StepFailed(f"the answer is not JSON: {_short(content)}") from None
        if self.model_type is not None:
            try:
                return self.model_type.model_validate(value).model_dump(mode="json")
            except ValidationError as exc:
                raise StepFailed(
                    f"the answer does not fit {self.model_type.__name__}: "
                    + "; ".join(
                        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
                    )
                ) from None
        assert self.check is not None
        errors = sorted(self.check.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            raise StepFailed(
                "the answer does not fit output_schema: "
                + "; ".join(
                    f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                    for e in errors[:5]
                )
            )
        return value

    async def _offline(self, ctx: StepContext) -> object:
        o = self.options
        if self.stand_in is None:
            raise StepFailed(
                f"no endpoint configured for model {o.model!r}: set ${o.base_url_env} (and "
                f"${o.api_key_env} if it needs a key), or give the agent a base_url or a "
                "stand_in",
                retryable=False,
            )
        ctx.emit("stand_in", {"model": o.model, "reason": "no endpoint configured"})
        result = self.stand_in(ctx)
        if hasattr(result, "__await__"):
            result = await result
        return result


def rejection(errors: tuple[str, ...] | list[str]) -> str:
    """What an agent is told when its earlier answers were not accepted."""
    listed = "\n".join(f"- {e}" for e in errors[-3:])
    return f"Earlier answers were not accepted:\n{listed}\nAnswer again, fixing this."


def _short(text: object, limit: int = 300) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit] + "…"


class LlmKind:
    """A chat model through an OpenAI-compatible endpoint."""

    options = LlmOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, LlmOptions)
        return _Llm(options, base_dir)


LLM = LlmKind()
