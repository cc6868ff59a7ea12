"""Agent OS workflow templates: workflows described as phases of agents.

Agent OS (where ``../shared/seed/agent-orchestration-patterns.md`` comes from) publishes no
schema for its templates; this is the format read here, taken from the seed's sequential,
parallel and hybrid sections. A template is a YAML mapping::

    name: feature_development        # or workflow: {name, description}; default: file stem
    description: Turn a request into working code.
    inputs: [request, repo]          # names (required), or name -> default, or
                                     #   name -> {type, default, required, description}
    agents:                          # optional: agents the template defines itself, as
      linter: {kind: program, argv: [ruff, check, .]}   # counterpoint agents (name -> spec)
    phases:                          # a list in order, or a mapping name -> phase
      - name: analysis               # default (list only): phase_1, phase_2...
        agents: [analyze-product, context-intelligence]   # in order: one after the other
        inputs: [request]            # workflow inputs or outputs of earlier phases
        outputs: [spec]              # names of what the phase produces
      - name: build
        parallel: true               # the agents run at once (default: false)
        agents: [backend-dev, frontend-dev]
        dependencies: [analysis]     # a name or names of phases that must end first
                                     #   (default: the previous phase; [] or empty: none)
        inputs: [spec]

The seed's own shape is read too: ``phase_examples: {NAME: {PHASE: ...}}`` with one
workflow (its name is NAME), where a phase may have

- ``coordination``: text; when the phase says nothing else, text starting with "parallel"
  makes it parallel, anything else sequential (``parallel:`` decides when given);
- ``parallel_streams`` (or ``streams``, or any ``parallel_*`` key, such as the seed's
  ``parallel_implementation``): streams of a parallel phase, as a mapping stream -> agents
  or a list of one-key mappings; each stream runs its agents in order;
- ``sync_points``: a list of names is recorded in the phase's description (the seed does not
  say which streams meet there); a mapping name -> ``{after: {STREAM: AGENT}, streams:
  [...]}`` becomes a real sync point (``streams`` defaults to the keys of ``after``);
- ``purpose`` (or ``description``), ``duration`` and any other text (``setup``,
  ``integration``): recorded in the phase's description.

A phase written as a bare list (``analysis: [a, b]``) is a sequential phase of those agents.
``version`` and ``category`` (the seed's front matter) are allowed at the top and ignored;
other unknown keys are errors, except text in a phase, which goes to its description.

The workflow made of it:

- Every agent the template names but does not define becomes ``{kind: subagent, name:
  AGENT}`` (a Claude Code subagent file of that name); ``agent_kind`` replaces that
  definition (``{"kind": "noop"}`` for a dry run; ``name`` is added only to subagents). An
  agent the template defines keeps its definition (a mapping without ``kind`` gets the
  default kind, text is its description).
- Each phase is a construct with the phase's (sanitized) name as its id: ``sequential``
  (each agent one step, in order) or ``parallel`` (one step per agent, or its streams, each
  a sequence). Step ids are ``PHASE-AGENT``, in streams ``PHASE-STREAM-AGENT`` (an agent
  may work in several streams), with ``-2``, ``-3`` for an agent named twice.
- Dependencies. When they form a chain (each phase needs the one before it, once the
  dependencies implied by others are left out), the steps are one ``phases:`` block: the
  hybrid pattern, phases in that order. Otherwise a phases block would add dependencies the
  template does not have, so each phase becomes a plain construct (``sequence:`` or
  ``parallel:``) that ``needs`` exactly the phases it depends on. Either way a phase starts
  exactly when every phase it depends on (directly or not) has ended.
- Every step of a phase gets the phase's inputs as its ``input``: a mapping with one key per
  name, a workflow input as ``${{ inputs.NAME }}`` and an earlier phase's output as that
  phase's whole output, ``${{ steps.PHASE.output }}`` (the output of its join step). Agents'
  outputs have no declared shape, so a named output cannot be picked out of it; the phase's
  ``outputs`` are recorded in its description ("produces: ...").

The YAML (``to_yaml``) starts with a comment naming the template and the mapping chosen;
the same template always gives the same text.

Errors (``TemplateError``, an ``ImportFormatError``) say ``FILE:LINE:COL: message``, placed
by the project's YAML 1.2 loader: YAML mistakes and duplicate keys, a template that is not a
mapping, without phases, a phase without agents, a dependency on an unknown phase, a
dependency cycle, an input that is neither a workflow input nor an output of a phase it
comes after (or an output two phases produce), sync points that name no stream, unknown keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from counterpoint.errors import ImportFormatError, WorkflowInvalid
from counterpoint.importers.common import agent_name
from counterpoint.model.load import parse_yaml
from counterpoint.model.locate import YamlPositions
from counterpoint.model.messages import did_you_mean

__all__ = ["DEFAULT_AGENT_KIND", "ImportedData", "TemplateError", "read", "reads"]

DEFAULT_AGENT_KIND: Mapping[str, Any] = {"kind": "subagent"}
"""What an agent the template names without defining becomes (plus ``name`` for subagents)."""

Loc = tuple[str | int, ...]

_TOP_KEYS = (
    "name",
    "description",
    "workflow",
    "inputs",
    "agents",
    "phases",
    "phase_examples",
    "version",
    "category",
)
# The keys of a phase that are not text; a key close to one of them is a typo, not a note.
_STRUCTURE_KEYS = (
    "name",
    "agents",
    "parallel",
    "dependencies",
    "inputs",
    "outputs",
    "sync_points",
    "streams",
    "parallel_streams",
)
_INPUT_KEYS = frozenset({"type", "default", "required", "description"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")


class TemplateError(ImportFormatError):
    """An Agent OS template that cannot be imported; says ``FILE:LINE:COL: message``."""

    def __init__(self, file: str, line: int | None, column: int | None, message: str) -> None:
        super().__init__(file, line, message)
        self.column = column
        self.message = message
        if line is not None and column is not None:
            self.args = (f"{file}:{line}:{column}: {message}",)


class ImportedData(dict[str, Any]):
    """Workflow data, with the comment that ``to_yaml`` writes above it."""

    header: str = ""


def read(path: Path, *, agent_kind: Mapping[str, Any] | None = None) -> ImportedData:
    """Workflow data for the Agent OS template at ``path``."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(file, None, None, f"cannot read the file: {exc}") from None
    return reads(text, file, agent_kind=agent_kind)


def reads(
    text: str, file: str = "<string>", *, agent_kind: Mapping[str, Any] | None = None
) -> ImportedData:
    """Workflow data for an Agent OS template given as YAML text (``file`` names it)."""
    kind = dict(DEFAULT_AGENT_KIND if agent_kind is None else agent_kind)
    if not isinstance(kind.get("kind"), str):
        raise ValueError(f"agent_kind needs a 'kind', got {kind!r}")
    try:
        root, data = parse_yaml(text, file)
    except WorkflowInvalid as exc:
        first = min(exc.problems, key=lambda p: (p.line or 0, p.column or 0))
        raise TemplateError(file, first.line or 1, first.column or 1, first.message) from None
    if root is None:
        raise TemplateError(file, 1, 1, "the template is empty: it needs phases")
    return _Importer(file, YamlPositions(file, root), kind).run(data)


@dataclass
class _Phase:
    name: str
    loc: Loc
    id: str = ""
    parallel: bool = False
    agents: list[tuple[str, Loc]] = field(default_factory=list)
    streams: dict[str, list[tuple[str, Loc]]] = field(default_factory=dict)
    deps: list[tuple[str, Loc]] | None = None  # None: the previous phase
    inputs: list[tuple[str, Loc]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sync_points: dict[str, tuple[dict[str, tuple[str, Loc]], list[str], Loc]] = field(
        default_factory=dict
    )  # name -> (after: stream -> (agent, where), streams, where)
    notes: list[str] = field(default_factory=list)
    needs: list[int] = field(default_factory=list)  # indices of the phases it depends on


def _part(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "x"


class _Importer:
    def __init__(self, file: str, where: YamlPositions, agent_kind: dict[str, Any]) -> None:
        self.file = file
        self.where = where
        self.agent_kind = agent_kind
        self.taken: set[str] = set()

    def fail(self, loc: Loc, message: str, *, key: bool = False) -> TemplateError:
        node = self.where.node(loc, key=key)
        if node is None:
            return TemplateError(self.file, 1, 1, message)
        mark = node.start_mark
        return TemplateError(self.file, mark.line + 1, mark.column + 1, message)

    def unique(self, base: str) -> str:
        found, n = base, 1
        while found in self.taken:
            n += 1
            found = f"{base}-{n}"
        self.taken.add(found)
        return found

    # --- reading -------------------------------------------------------------------------

    def run(self, data: object) -> ImportedData:
        if not isinstance(data, dict):
            raise self.fail((), "an Agent OS template must be a mapping with `phases`")
        for key in data:
            if key not in _TOP_KEYS:
                hint = did_you_mean(str(key), _TOP_KEYS)
                raise self.fail((key,), f"unknown key {key!r}{hint}", key=True)
        name, description = self.header_fields(data)
        raw, loc, example = self.phases_source(data)
        name = name or example or Path(self.file).stem
        phases = self.read_phases(raw, loc)
        inputs = self.read_inputs(data.get("inputs"))
        defined = self.read_agents(data.get("agents"))
        self.resolve_dependencies(phases)
        order = self.topological(phases)
        chain = self.is_chain(phases, order)
        ancestors = self.ancestors(phases, order)
        for p in phases:
            p.id = self.unique(agent_name(p.name))
        refs = self.resolve_inputs(phases, inputs, ancestors)
        items = self.items(phases, order, refs, chain, name)
        out = ImportedData()
        out["name"] = name
        out["description"] = description or (
            f"imported from the Agent OS template {Path(self.file).name}: "
            f"{len(phases)} phase{'s' if len(phases) != 1 else ''}"
        )
        if inputs:
            out["inputs"] = {k: spec for k, (spec, _) in inputs.items()}
        out["agents"] = self.agent_specs(phases, defined)
        out["steps"] = items
        how = (
            "# Its phases form a chain of dependencies: one `phases` block runs them in order.\n"
            if chain
            else "# Its phases' dependencies are not a chain: each phase is a construct that\n"
            "# `needs` exactly the phases it depends on.\n"
        )
        out.header = (
            "# Imported by `counterpoint import agent-os` from the Agent OS template\n"
            f"# {self.file}\n{how}"
        )
        return out

    def text(self, value: object, loc: Loc, what: str) -> str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(loc, f"{what} should be text")
        return str(value)

    def names(self, value: object, loc: Loc, what: str) -> list[tuple[str, Loc]]:
        """A name or a list of names, each with where it is."""
        if value is None:
            return []
        if isinstance(value, str):
            return [(value, loc)]
        if not isinstance(value, list):
            raise self.fail(loc, f"{what} should be a name or a list of names")
        return [
            (self.text(v, (*loc, i), f"each of {what}"), (*loc, i)) for i, v in enumerate(value)
        ]

    def header_fields(self, data: dict[str, Any]) -> tuple[str | None, str | None]:
        wf = data.get("workflow")
        found: dict[str, tuple[object, Loc]] = {}
        if isinstance(wf, dict):
            for key, value in wf.items():
                if key not in ("name", "description"):
                    hint = did_you_mean(str(key), ("name", "description"))
                    raise self.fail(
                        ("workflow", key), f"unknown key {key!r} in workflow{hint}", key=True
                    )
                found[key] = (value, ("workflow", key))
        elif isinstance(wf, str):
            found["name"] = (wf, ("workflow",))
        elif wf is not None:
            raise self.fail(("workflow",), "workflow should be a mapping {name, description}")
        for key in ("name", "description"):
            if data.get(key) is not None:
                found[key] = (data[key], (key,))

        def given(key: str) -> str | None:
            found_value, at = found.get(key, (None, ()))
            return None if found_value is None else self.text(found_value, at, key)

        return given("name"), given("description")

    def phases_source(self, data: dict[str, Any]) -> tuple[object, Loc, str | None]:
        if "phases" in data:
            if "phase_examples" in data:
                raise self.fail(("phase_examples",), "give `phases` or `phase_examples`, not both")
            return data["phases"], ("phases",), None
        examples = data.get("phase_examples")
        if examples is None:
            raise self.fail(
                (), "no phases: give `phases` (a list or a mapping of phases) or `phase_examples`"
            )
        if not isinstance(examples, dict) or not examples:
            raise self.fail(
                ("phase_examples",), "phase_examples should map a workflow's name to its phases"
            )
        if len(examples) > 1:
            listed = ", ".join(map(str, examples))
            raise self.fail(
                ("phase_examples",),
                f"phase_examples holds {len(examples)} workflows ({listed}); "
                "a template to import holds one",
            )
        ((example, raw),) = examples.items()
        return raw, ("phase_examples", example), str(example)

    def read_phases(self, raw: object, loc: Loc) -> list[_Phase]:
        entries: list[tuple[str, object, Loc]] = []
        if isinstance(raw, list):
            for i, item in enumerate(raw):
                name: object = f"phase_{i + 1}"
                if isinstance(item, dict) and "name" in item:
                    name = self.text(item["name"], (*loc, i, "name"), "a phase's name")
                entries.append((str(name), item, (*loc, i)))
        elif isinstance(raw, dict):
            entries = [(str(k), v, (*loc, k)) for k, v in raw.items()]
        else:
            raise self.fail(loc, "phases should be a list of phases or a mapping name -> phase")
        if not entries:
            raise self.fail(loc, "no phases: the template lists none")
        phases: list[_Phase] = []
        seen: dict[str, Loc] = {}
        for name, item, where in entries:
            if name in seen:
                raise self.fail(where, f"two phases are called {name!r}")
            seen[name] = where
            phases.append(self.read_phase(name, item, where, keyed=isinstance(raw, dict)))
        return phases

    def read_phase(self, name: str, item: object, loc: Loc, *, keyed: bool) -> _Phase:
        phase = _Phase(name, loc)
        if isinstance(item, list | str):
            phase.agents = self.names(item, loc, f"phase {name!r}")
        elif not isinstance(item, dict):
            raise self.fail(loc, f"phase {name!r} should be a mapping (agents, dependencies...)")
        else:
            self.phase_fields(phase, item, loc, keyed=keyed)
        if not phase.agents and not phase.streams:
            raise self.fail(
                loc, f"phase {name!r} has no agents: give `agents` or `parallel_streams`"
            )
        return phase

    def phase_fields(self, phase: _Phase, item: dict[str, Any], loc: Loc, *, keyed: bool) -> None:
        name = phase.name
        described: list[str] = []
        notes: list[str] = []
        for key, value in item.items():
            at = (*loc, key)
            if key == "name":
                if keyed and str(value) != name:
                    raise self.fail(at, f"phase {name!r}: its name is its key here")
            elif key == "agents":
                phase.agents = self.names(value, at, f"the agents of phase {name!r}")
            elif key == "streams" or str(key).startswith("parallel_"):
                self.read_streams(phase, value, at)
            elif key == "dependencies":
                phase.deps = self.names(value, at, f"the dependencies of phase {name!r}")
            elif key == "inputs":
                phase.inputs = self.names(value, at, f"the inputs of phase {name!r}")
            elif key == "outputs":
                phase.outputs = [n for n, _ in self.names(value, at, f"outputs of {name!r}")]
            elif key == "sync_points":
                notes += self.read_sync_points(phase, value, at)
            elif key in ("purpose", "description"):
                described.append(self.text(value, at, f"phase {name!r}: {key}"))
            elif key != "parallel":
                hint = did_you_mean(str(key), _STRUCTURE_KEYS)
                if hint:
                    raise self.fail(at, f"phase {name!r}: unknown key {key!r}{hint}", key=True)
                if not isinstance(value, str):
                    raise self.fail(
                        at, f"phase {name!r}: unknown key {key!r} (other keys may hold text)"
                    )
                notes.append(f"{key}: {value}")
        phase.parallel = self.is_parallel(phase, item, loc)
        if phase.agents and phase.streams:
            raise self.fail(loc, f"phase {name!r}: give either agents or parallel streams")
        if phase.sync_points and not phase.streams:
            raise self.fail(
                (*loc, "sync_points"), f"phase {name!r}: sync points need parallel streams"
            )
        if phase.outputs:
            notes.append("produces: " + ", ".join(phase.outputs))
        phase.notes = described + notes

    def is_parallel(self, phase: _Phase, item: dict[str, Any], loc: Loc) -> bool:
        given = item.get("parallel")
        if given is not None and not isinstance(given, bool):
            raise self.fail((*loc, "parallel"), "parallel should be true or false")
        if phase.streams:
            if given is False:
                raise self.fail(
                    (*loc, "parallel"),
                    f"phase {phase.name!r}: streams run in parallel; remove `parallel: false`",
                )
            return True
        if given is not None:
            return given
        coordination = item.get("coordination")
        return isinstance(coordination, str) and coordination.strip().lower().startswith("parallel")

    def read_streams(self, phase: _Phase, value: object, loc: Loc) -> None:
        entries: list[tuple[str, object, Loc]] = []
        if isinstance(value, dict):
            entries = [(str(k), v, (*loc, k)) for k, v in value.items()]
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict) or len(item) != 1:
                    raise self.fail(
                        (*loc, i), "each stream in a list should be one `STREAM: [agents]`"
                    )
                ((k, v),) = item.items()
                entries.append((str(k), v, (*loc, i, k)))
        else:
            raise self.fail(loc, "streams should map each stream's name to its agents")
        for stream, agents, at in entries:
            if stream in phase.streams:
                raise self.fail(at, f"phase {phase.name!r}: two streams are called {stream!r}")
            found = self.names(agents, at, f"stream {stream!r}")
            if not found:
                raise self.fail(at, f"stream {stream!r} of phase {phase.name!r} has no agents")
            phase.streams[stream] = found

    def read_sync_points(self, phase: _Phase, value: object, loc: Loc) -> list[str]:
        """Named sync points become notes; ``name: {after: {stream: agent}}`` real ones."""
        if isinstance(value, list | str):
            listed = [n for n, _ in self.names(value, loc, "sync_points")]
            return ["sync points: " + ", ".join(listed)] if listed else []
        if not isinstance(value, dict):
            raise self.fail(loc, "sync_points should be a list of names or a mapping")
        for sp, body in value.items():
            at = (*loc, sp)
            after = body.get("after") if isinstance(body, dict) else None
            if not isinstance(after, dict) or not after:
                raise self.fail(
                    at, f"sync point {sp!r} should be {{after: {{STREAM: AGENT, ...}}}}"
                )
            given = body.get("streams")
            streams = (
                [n for n, _ in self.names(given, (*at, "streams"), "streams")]
                if given is not None
                else [str(s) for s in after]
            )
            milestones = {
                str(s): (self.text(a, (*at, "after", s), "a milestone"), (*at, "after", s))
                for s, a in after.items()
            }
            phase.sync_points[str(sp)] = (milestones, streams, at)
        return []

    def read_inputs(self, raw: object) -> dict[str, tuple[dict[str, Any], Loc]]:
        """Workflow inputs: name -> (its spec, where)."""
        loc: Loc = ("inputs",)
        if raw is None:
            return {}
        if isinstance(raw, list | str):
            return {n: ({"required": True}, at) for n, at in self.names(raw, loc, "inputs")}
        if not isinstance(raw, dict):
            raise self.fail(loc, "inputs should be a list of names or a mapping name -> default")
        out: dict[str, tuple[dict[str, Any], Loc]] = {}
        for k, v in raw.items():
            if isinstance(v, dict) and v and set(v) <= _INPUT_KEYS:
                out[str(k)] = (dict(v), (*loc, k))
            elif v is None:
                out[str(k)] = ({"required": True}, (*loc, k))
            else:
                out[str(k)] = ({"default": v}, (*loc, k))
        return out

    def read_agents(self, raw: object) -> dict[str, dict[str, Any]]:
        """The agents the template defines: name -> counterpoint agent definition."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.fail(("agents",), "agents should map each agent's name to its definition")
        out: dict[str, dict[str, Any]] = {}
        for k, v in raw.items():
            name = str(k)
            if v is None:
                out[name] = self.default_agent(name)
            elif isinstance(v, str):
                out[name] = {**self.default_agent(name), "description": v}
            elif isinstance(v, dict):
                spec = dict(v) if "kind" in v else {**self.agent_kind, **v}
                if spec.get("kind") == "subagent":
                    spec.setdefault("name", name)
                out[name] = spec
            else:
                raise self.fail(("agents", k), f"agent {name!r}: give a definition or text")
        return out

    def default_agent(self, name: str) -> dict[str, Any]:
        spec = dict(self.agent_kind)
        if spec["kind"] == "subagent":
            spec.setdefault("name", name)
        return spec

    # --- dependencies --------------------------------------------------------------------

    def resolve_dependencies(self, phases: list[_Phase]) -> None:
        index = {p.name: i for i, p in enumerate(phases)}
        for i, p in enumerate(phases):
            if p.deps is None:
                p.needs = [i - 1] if i else []
                continue
            for dep, at in p.deps:
                if dep not in index:
                    hint = did_you_mean(dep, index)
                    raise self.fail(
                        at, f"phase {p.name!r} depends on {dep!r}, which is not a phase{hint}"
                    )
                if index[dep] not in p.needs:
                    p.needs.append(index[dep])
        self.check_cycles(phases)

    def check_cycles(self, phases: list[_Phase]) -> None:
        state = [0] * len(phases)  # 0 not seen, 1 on the path, 2 done
        path: list[int] = []

        def visit(i: int) -> None:
            state[i] = 1
            path.append(i)
            for d in phases[i].needs:
                if state[d] == 1:
                    cycle = [*path[path.index(d) :], d]
                    shown = " -> ".join(phases[c].name for c in cycle)
                    raise self.fail(
                        self.dependency_loc(phases[i], phases[d].name),
                        f"a dependency cycle: {shown} (each depends on the next)",
                    )
                if state[d] == 0:
                    visit(d)
            path.pop()
            state[i] = 2

        for i in range(len(phases)):
            if state[i] == 0:
                visit(i)

    @staticmethod
    def dependency_loc(phase: _Phase, dep: str) -> Loc:
        for name, at in phase.deps or ():
            if name == dep:
                return at
        return phase.loc

    @staticmethod
    def topological(phases: list[_Phase]) -> list[int]:
        """Phases after what they depend on; among the ready ones, the first written."""
        done: set[int] = set()
        order: list[int] = []
        while len(order) < len(phases):
            nxt = next(i for i, p in enumerate(phases) if i not in done and set(p.needs) <= done)
            done.add(nxt)
            order.append(nxt)
        return order

    @staticmethod
    def ancestors(phases: list[_Phase], order: list[int]) -> list[set[int]]:
        out: list[set[int]] = [set() for _ in phases]
        for i in order:
            for d in phases[i].needs:
                out[i] |= {d} | out[d]
        return out

    def is_chain(self, phases: list[_Phase], order: list[int]) -> bool:
        """Whether the dependencies, those implied by others left out, are a chain in
        ``order``: then phases in that order keep them exactly."""
        ancestors = self.ancestors(phases, order)
        for k, i in enumerate(order):
            needs = set(phases[i].needs)
            direct = {d for d in needs if not any(d in ancestors[e] for e in needs)}
            if direct != ({order[k - 1]} if k else set()):
                return False
        return True

    def resolve_inputs(
        self,
        phases: list[_Phase],
        inputs: dict[str, tuple[dict[str, Any], Loc]],
        ancestors: list[set[int]],
    ) -> list[dict[str, str]]:
        """Each phase's input: name -> reference."""
        producers: dict[str, int] = {}
        for i, p in enumerate(phases):
            for out in p.outputs:
                if out in inputs:
                    raise self.fail(
                        (*p.loc, "outputs"),
                        f"phase {p.name!r} produces {out!r}, which is also a workflow input",
                    )
                if out in producers and producers[out] != i:
                    other = phases[producers[out]].name
                    raise self.fail(
                        (*p.loc, "outputs"),
                        f"phase {p.name!r} produces {out!r}, which phase {other!r} produces too",
                    )
                producers[out] = i
        refs: list[dict[str, str]] = []
        for i, p in enumerate(phases):
            ref: dict[str, str] = {}
            for name, at in p.inputs:
                if name in inputs:
                    ref[name] = f"${{{{ inputs.{name} }}}}"
                elif name in producers:
                    src = producers[name]
                    if src not in ancestors[i]:
                        raise self.fail(
                            at,
                            f"phase {p.name!r} reads {name!r}, which phase "
                            f"{phases[src].name!r} produces, but it does not come after "
                            f"{phases[src].name!r} (add it to its dependencies)",
                        )
                    ref[name] = f"${{{{ steps.{phases[src].id}.output }}}}"
                else:
                    known = [*inputs, *producers]
                    raise self.fail(
                        at,
                        f"phase {p.name!r} reads {name!r}, which is neither a workflow input "
                        f"nor an output of a phase{did_you_mean(name, known)}",
                    )
            refs.append(ref)
        return refs

    # --- writing -------------------------------------------------------------------------

    def items(
        self,
        phases: list[_Phase],
        order: list[int],
        refs: list[dict[str, str]],
        chain: bool,
        name: str,
    ) -> list[dict[str, Any]]:
        built = {i: self.phase_body(phases[i], refs[i]) for i in order}
        if chain:
            block_id = self.unique(agent_name(name))
            body = [{"id": phases[i].id, **built[i]} for i in order]
            return [{"phases": {"id": block_id, "phases": body}}]
        items: list[dict[str, Any]] = []
        for i in order:
            p = phases[i]
            pattern = built[i].pop("pattern")
            head: dict[str, Any] = {"id": p.id}
            if p.needs:
                head["needs"] = [phases[d].id for d in p.needs]
            construct = "parallel" if pattern == "parallel" else "sequence"
            items.append({construct: {**head, **built[i]}})
        return items

    def phase_body(self, phase: _Phase, ref: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {"pattern": "parallel" if phase.parallel else "sequential"}
        if phase.notes:
            body["description"] = "; ".join(phase.notes)

        def step(agent: str, stream: str | None) -> dict[str, Any]:
            base = f"{phase.id}-{_part(agent)}"
            if stream is not None:
                base = f"{phase.id}-{_part(stream)}-{_part(agent)}"
            out: dict[str, Any] = {"id": self.unique(base), "agent": agent}
            if ref:
                out["input"] = dict(ref)
            return out

        if phase.agents:
            body["steps"] = [step(a, None) for a, _ in phase.agents]
            return body
        streams = {s: [step(a, s) for a, _ in agents] for s, agents in phase.streams.items()}
        body["streams"] = streams
        if phase.sync_points:
            body["sync_points"] = self.sync_points(phase, streams)
        return body

    def sync_points(
        self, phase: _Phase, streams: dict[str, list[dict[str, Any]]]
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, (after, listed, loc) in phase.sync_points.items():
            steps: dict[str, str] = {}
            for stream, (agent, at) in after.items():
                if stream not in streams:
                    hint = did_you_mean(stream, streams)
                    raise self.fail(
                        at, f"sync point {name!r}: no stream {stream!r}{hint}", key=True
                    )
                found = [s["id"] for s in streams[stream] if s["agent"] == agent]
                if not found:
                    raise self.fail(
                        at, f"sync point {name!r}: stream {stream!r} has no agent {agent!r}"
                    )
                steps[stream] = found[0]
            for stream in listed:
                if stream not in after:
                    raise self.fail(
                        (*loc, "streams"),
                        f"sync point {name!r}: say after which agent of {stream!r}",
                    )
            for stream, (_, at) in after.items():
                if stream not in listed:
                    raise self.fail(
                        at, f"sync point {name!r}: {stream!r} is not in its streams", key=True
                    )
            out[name] = {"streams": listed, "after": steps}
        return out

    def agent_specs(
        self, phases: list[_Phase], defined: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Every agent, in the order first named, then those defined but not named."""
        out: dict[str, dict[str, Any]] = {}
        for p in phases:
            for agent, _ in [*p.agents, *(a for s in p.streams.values() for a in s)]:
                if agent not in out:
                    out[agent] = defined.get(agent) or self.default_agent(agent)
        for agent, spec in defined.items():
            out.setdefault(agent, spec)
        return out
