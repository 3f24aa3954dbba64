"""Route rule resolution kept from one graph build to the next.

Place in the pipeline: Snapshot -> **graph.build** (with a ``RuleMemo``) -> Graph. At
thousands of routes, validating and resolving every route's rules on each reload is
most of the graph's cost, while a reload usually changes one route. What a route's
rules resolve to is a function of two things only:

* the route object (compared by identity: the file source hands out the very same
  frozen object while its file is unchanged), which also fixes the sequence of
  ``BackendResolver.resolve`` calls the resolution makes (they depend on the spec
  alone, never on earlier answers);
* the answers to those calls, which depend on Services, EndpointSlices,
  ReferenceGrants, BackendTLSPolicies and whatever the resolver consults.

So an entry records the calls with their answers, and the next build replays the
same calls, in the same order, against the new resolver. The replay also gives the
resolver exactly the side effects (clusters, endpoints, TLS) a full resolution
would. Only if every answer is equal are the recorded rules and conditions reused;
otherwise the route is resolved again. The graph stays a pure function of the
Snapshot: with or without the memo, the same Snapshot gives the same Graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from turnout.graph.backends import BackendResolver, BackendTarget
from turnout.graph.model import ResolvedRule, RouteNode
from turnout.resources.meta import TopLevelObject
from turnout.status.conditions import Condition

Answer = tuple[str | None, Condition | None]
Call = tuple[BackendTarget, str, str, str]  # target, field, from_kind, from_namespace


class _RecordingResolver(BackendResolver):
    """Forwards ``resolve`` to the build's resolver and records every call.

    Only ``resolve`` is used by rule resolution; the indexes stay in the resolver it
    wraps (hence no ``super().__init__``)."""

    def __init__(self, resolver: BackendResolver) -> None:
        self._inner = resolver
        self.calls: list[tuple[Call, Answer]] = []

    def resolve(
        self,
        target: BackendTarget,
        *,
        field: str,
        from_kind: str,
        from_namespace: str,
        check_app_protocol: bool = True,
    ) -> Answer:
        # HTTPRoutes and GRPCRoutes (the only users of the memo) always check it.
        assert check_app_protocol
        answer = self._inner.resolve(
            target, field=field, from_kind=from_kind, from_namespace=from_namespace
        )
        self.calls.append(((target, field, from_kind, from_namespace), answer))
        return answer


@dataclass(frozen=True, slots=True)
class _Resolution:
    obj: TopLevelObject  # held: its id is the key, and must not be recycled
    calls: tuple[tuple[Call, Answer], ...]
    rules: tuple[ResolvedRule, ...]  # never mutated once built
    common_conditions: tuple[Condition, ...]
    invalid: Condition | None


class RuleMemo:
    """Kept by the caller across ``graph.build`` calls (one per pipeline)."""

    def __init__(self) -> None:
        self._previous: dict[int, _Resolution] = {}
        self._current: dict[int, _Resolution] = {}

    def begin(self) -> None:
        """Start a build: what the previous build resolved is what may be reused."""
        self._previous, self._current = self._current, {}

    def carry_over(self) -> None:
        """Start a patch (graph/incremental.py): only some routes are resolved, and the
        entries of all the others stay for the next build."""
        self._previous, self._current = self._current, dict(self._current)

    def forget(self, obj: TopLevelObject) -> None:
        """Drop the entry of a route that a patch replaced or removed."""
        found = self._current.get(id(obj))
        if found is not None and found.obj is obj:
            del self._current[id(obj)]

    def resolve_rules(
        self,
        node: RouteNode,
        resolver: BackendResolver,
        resolve_rules: Callable[[RouteNode, BackendResolver], None],
    ) -> None:
        """Fill ``node.rules``, ``common_conditions`` and ``invalid`` as
        ``resolve_rules(node, resolver)`` would."""
        found = self._previous.get(id(node.obj))
        if found is not None and found.obj is node.obj and _same_answers(found, resolver):
            node.rules = list(found.rules)
            node.common_conditions = list(found.common_conditions)
            node.invalid = found.invalid
        else:
            recording = _RecordingResolver(resolver)
            resolve_rules(node, recording)
            found = _Resolution(
                node.obj,
                tuple(recording.calls),
                tuple(node.rules),
                tuple(node.common_conditions),
                node.invalid,
            )
        self._current[id(node.obj)] = found


def _same_answers(found: _Resolution, resolver: BackendResolver) -> bool:
    """Replay every recorded call (all of them: each has side effects on the resolver
    that the build needs) and say whether every answer is the same."""
    same = True
    for (target, field, from_kind, from_namespace), answer in found.calls:
        now = resolver.resolve(
            target, field=field, from_kind=from_kind, from_namespace=from_namespace
        )
        same = same and now == answer
    return same
