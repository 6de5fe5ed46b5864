"""Checks across entities: references, cycles, catalog entries, pool dedication, names."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from .base import canonical_name
from .naming import camel_path
from .problems import Problem
from .resolve import Resolver
from .root import EchelonConfig
from .route_checks import (
    Finding,
    group_tiers,
    mixed_embedding_spaces,
    mixed_node_settings,
    mixed_pool_settings,
    node_tiers,
    pool_tiers,
    unweighted_pool,
)

__all__ = ["cross_check"]

Key = tuple[str, str]
_SUGGESTIONS = 25


class _Checker:
    def __init__(self, config: EchelonConfig, origins: Mapping[Key, object],
                 manifest: Mapping[Key, bool], broken: Mapping[str, set[str]],
                 salvaged: set[Key]) -> None:
        self.config = config
        self.broken = broken
        self.salvaged = salvaged
        self.origins = origins
        self.manifest = manifest
        self.resolver = Resolver(config)
        self.problems: list[Problem] = []
        self.unresolved = 0

    # -- reporting -------------------------------------------------------------------------------

    def report(self, section: str, name: str, message: str, rel: tuple[str | int, ...] = (),
               *, severity: str = "error", hint: str | None = None) -> None:
        if severity != "error" and (section, name) in self.salvaged:
            return  # a warning about an entity rebuilt without its bad fields may mislead
        origin = self.origins.get((section, name))
        if self.manifest.get((section, name)):
            rel = camel_path(rel)
        if origin is not None:
            self.problems.append(
                origin.problem(message, rel, severity=severity, hint=hint)  # type: ignore[attr-defined]
            )
        else:
            path = (section, name, *rel) if name else (section, *rel)
            self.problems.append(Problem(message, path, None, None, severity, hint))  # type: ignore[arg-type]

    def check_ref(self, section: str, name: str, ref: str, rel: tuple[str | int, ...]) -> bool:
        if self.resolver.parse_ref(ref) is not None:
            return True
        if self.is_broken("task_groups", ref.split(".", 1)[0]):
            return False  # its own schema errors are already listed
        self.unresolved += 1
        if self.unresolved > _SUGGESTIONS:  # "did you mean" is O(names): only for the first few
            self.report(section, name, f"reference {ref!r} names no task group (or tier)", rel)
            return False
        head, dot, tail = ref.rpartition(".")
        group = self.resolver.group_name(head) if dot else None
        if group is not None:
            tiers = list(self.config.task_groups[group].echelons)
            close = difflib.get_close_matches(tail, tiers, n=1)
            self.report(section, name, f"reference {ref!r}: group {group!r} has no tier {tail!r}",
                        rel, hint=(f"did you mean {group}.{close[0]}? " if close else "")
                        + f"its tiers: {', '.join(tiers)}")
            return False
        names = [*self.config.task_groups]
        names += [f"{g}.{t}" for g, grp in self.config.task_groups.items() for t in grp.echelons]
        close = difflib.get_close_matches(ref, names, n=1)
        self.report(section, name, f"reference {ref!r} names no task group",
                    rel, hint=f"did you mean {close[0]!r}?" if close else
                    f"declared groups: {', '.join(self.config.task_groups) or 'none'}")
        return False

    def wrote_echelons(self, group: str) -> bool:
        origin = self.origins.get(("task_groups", group))
        lines = getattr(origin, "lines", None)
        prefix = getattr(origin, "prefix", ())
        return lines is not None and (*prefix, "echelons") in lines.lines

    def is_broken(self, section: str, name: str) -> bool:
        return canonical_name(name) in self.broken.get(section, ())

    # -- checks ----------------------------------------------------------------------------------

    def run(self) -> list[Problem]:
        self.check_names()
        self.check_groups()
        self.check_cycles()
        self.check_pools()
        self.check_nodes()
        self.check_routes()
        self.check_globals()
        return self.problems

    def check_names(self) -> None:
        seen: dict[str, tuple[str, str]] = {}
        kinds = {"task_groups": "task group", "polling_pools": "polling pool",
                 "workflow_nodes": "workflow node"}
        for section in kinds:
            for name in getattr(self.config, section):
                canon = canonical_name(name)
                if canon in seen and seen[canon][0] != section:
                    other_section, other = seen[canon]
                    self.report(section, name,
                                f"{kinds[section]} {name!r} has the same name as "
                                f"{kinds[other_section]} {other!r}; a request's model could not "
                                "tell them apart: rename one")
                seen.setdefault(canon, (section, name))
        for key, group in self.config.task_groups.items():
            if group.name and canonical_name(group.name) != canonical_name(key):
                self.report("task_groups", key, f"name {group.name!r} differs from its key "
                            f"{key!r}", ("name",))
        for key, pool in self.config.polling_pools.items():
            if pool.name and canonical_name(pool.name) != canonical_name(key):
                self.report("polling_pools", key, f"name {pool.name!r} differs from its key "
                            f"{key!r}", ("name",))

    def check_groups(self) -> None:
        catalog = self.config.models
        if not catalog and self.config.task_groups and not self.broken.get("models"):
            ids = sorted({m for g in self.config.task_groups.values()
                          for t in g.echelons.values() for m in t.models})
            first = next(iter(self.config.task_groups))
            self.report("task_groups", first,
                        f"no model catalog was given, so none of the {len(ids)} model ids the "
                        f"tiers use can be called ({', '.join(ids)})",
                        hint="add a top-level models: section (or a models.yaml file, or in "
                        "Kubernetes the operator's catalog ConfigMap) mapping each id to a "
                        "provider, upstream model and credential")
        for gname, group in self.config.task_groups.items():
            is_manifest = self.manifest.get(("task_groups", gname), False)
            # the source format writes tiers inline, unless the file says `echelons:` itself
            tiers_key = "echelons" if is_manifest or self.wrote_echelons(gname) else None
            for tname, tier in group.echelons.items():
                base = (tiers_key, tname) if tiers_key else (tname,)
                for index, model in enumerate(tier.models):
                    entry = self.resolver.model(model)
                    if entry is None and (not catalog or self.is_broken("models", model)):
                        continue
                    if entry is None:
                        hint = (
                            "no model catalog was given: add a models: section (or models.yaml)"
                            if not catalog else
                            _did_you_mean(model, list(catalog)) or "add it to models:"
                        )
                        self.report("task_groups", gname,
                                    f"model {model!r} is not in the model catalog",
                                    (*base, "models", index), hint=hint)
                    elif tier.thinking_config and tier.thinking_config.enabled and \
                            not entry.supports_reasoning:
                        self.report("task_groups", gname,
                                    f"tier enables thinking but model {model!r} "
                                    f"({entry.provider}) has no reasoning control; it will be "
                                    "skipped for these requests",
                                    (*base, "models", index), severity="warning",
                                    hint="set reasoning: true in its catalog entry if it accepts "
                                    "reasoning_effort")
                self.check_model_kinds(gname, base, tier.models)
                if is_manifest and len(group.echelons) > 1 and tier.priority is None:
                    self.report("task_groups", gname,
                                "tier has no priority; Kubernetes does not keep the order of "
                                "map keys, so tiers would be tried in name order",
                                (*base,), severity="warning", hint="set priority: 1, 2, ...")
            block_path = ("fallback_config",)
            block = group.fallback_config
            if block and block.fallback_groups:
                for index, ref in enumerate(block.fallback_groups):
                    self.check_ref("task_groups", gname, ref,
                                   (*block_path, "fallback_groups", index))
            if block and block.last_resort:
                self.check_ref("task_groups", gname, block.last_resort,
                               (*block_path, "last_resort"))
            if group.fallback_strategy and not is_manifest:
                self.report("task_groups", gname,
                            "fallback_strategy at group level is the older form",
                            ("fallback_strategy",), severity="warning",
                            hint="prefer fallback_config.strategy; `echelon migrate` rewrites it")

    def check_model_kinds(self, group: str, base: tuple[str | int, ...],
                          models: list[str]) -> None:
        """A tier that mixes embedding and chat models serves each request kind with half of
        them: worth a warning."""
        entries = [(m, self.resolver.model(m)) for m in models]
        embedding = [m for m, e in entries if e is not None and e.is_embedding]
        chat = [m for m, e in entries if e is not None and not e.is_embedding]
        if embedding and chat:
            self.report("task_groups", group,
                        f"tier mixes embedding models ({', '.join(embedding)}) and chat models "
                        f"({', '.join(chat)}): chat requests skip the embedding models and "
                        "embeddings requests the chat ones", (*base, "models"),
                        severity="warning",
                        hint="give embeddings a group (or tier) of their own")

    def check_cycles(self) -> None:
        edges: dict[str, list[str]] = {}
        for gname in self.config.task_groups:
            fb = self.resolver.effective_fallback(gname)
            targets = []
            for ref in fb.fallback_groups:
                parsed = self.resolver.parse_ref(ref)
                if parsed is not None and parsed.tier is None:
                    targets.append(parsed.group)
            edges[gname] = targets
        state: dict[str, int] = {}
        reported: set[frozenset[str]] = set()

        def visit(node: str, stack: list[str]) -> None:
            state[node] = 1
            stack.append(node)
            for nxt in edges.get(node, []):
                if state.get(nxt) == 1:
                    cycle = [*stack[stack.index(nxt):], nxt]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.report("task_groups", cycle[0],
                                    "fallback cycle: " + " -> ".join(cycle),
                                    hint="a whole-group fallback reference expands that group's "
                                    "own fallback groups; refer to a tier (group.tier) or drop "
                                    "one link")
                elif state.get(nxt, 0) == 0:
                    visit(nxt, stack)
            stack.pop()
            state[node] = 2

        for gname in edges:
            if state.get(gname, 0) == 0:
                visit(gname, [])

    def check_pools(self) -> None:
        for pname, pool in self.config.polling_pools.items():
            types: dict[str, list[str]] = {}
            models: set[str] = set()
            for index, ref in enumerate(pool.task_groups):
                if not self.check_ref("polling_pools", pname, ref, ("task_groups", index)):
                    continue
                target = self.resolver.parse_ref(ref)
                assert target is not None
                group = self.config.task_groups[target.group]
                if target.tier:
                    ttype = group.tier_task_type(target.group, target.tier)
                    models.update(group.echelons[target.tier].models)
                else:
                    ttype = group.group_task_type(target.group)
                    for tier in group.echelons.values():
                        models.update(tier.models)
                types.setdefault(ttype, []).append(ref)
            if len(types) > 1:
                listing = "; ".join(f"{t}: {', '.join(r)}" for t, r in types.items())
                self.report("polling_pools", pname,
                            f"pool mixes task types ({listing}); a pool should serve one task "
                            "type", ("task_groups",), severity="warning",
                            hint="split it into one pool per task type")
            for model in (pool.weights or {}):
                if model not in models:
                    self.report("polling_pools", pname,
                                f"weight given for {model!r}, which is not an instance of this "
                                "pool", ("weights", model),
                                hint=f"instances: {', '.join(sorted(models))}")
            if pool.weights and pool.rotation_strategy != "weighted":
                self.report("polling_pools", pname,
                            "weights are only used with rotation_strategy: weighted",
                            ("weights",), severity="warning")
            if pool.rate_limiting:
                for block in pool.rate_limiting.unused_blocks():
                    self.report("polling_pools", pname,
                                f"{block} parameters are not used with algorithm "
                                f"{pool.rate_limiting.algorithm}", ("rate_limiting", block),
                                severity="warning")

    def check_nodes(self) -> None:
        for nname, node in self.config.workflow_nodes.items():
            ok = self.check_ref("workflow_nodes", nname, node.llm_group, ("llm_group",))
            for index, ref in enumerate(node.fallback_groups or []):
                self.check_ref("workflow_nodes", nname, ref, ("fallback_groups", index))
            if node.polling_pool is None:
                continue
            pool_name = self.resolver.pool_name(node.polling_pool)
            if pool_name is None and self.is_broken("polling_pools", node.polling_pool):
                continue
            if pool_name is None:
                self.report("workflow_nodes", nname,
                            f"polling pool {node.polling_pool!r} does not exist",
                            ("polling_pool",),
                            hint=_did_you_mean(node.polling_pool, list(self.config.polling_pools)))
                continue
            if not ok:
                continue
            target = self.resolver.parse_ref(node.llm_group)
            assert target is not None
            pool = self.config.polling_pools[pool_name]
            served = [self.resolver.parse_ref(r) for r in pool.task_groups]
            covers = any(
                s is not None and s.group == target.group
                and (s.tier is None or s.tier == target.tier)
                for s in served
            )
            if not covers:
                self.report("workflow_nodes", nname,
                            f"llm_group {node.llm_group!r} is not served by polling pool "
                            f"{pool_name!r} (it serves {', '.join(pool.task_groups)})",
                            ("polling_pool",),
                            hint="point the node at a pool that serves its group, or add the "
                            "group to the pool")
            if node.task_type:
                group = self.config.task_groups[target.group]
                pool_types = set()
                for s in served:
                    if s is None:
                        continue
                    g = self.config.task_groups[s.group]
                    pool_types.add(g.tier_task_type(s.group, s.tier) if s.tier
                                   else g.group_task_type(s.group))
                if canonical_name(node.task_type) not in {canonical_name(t) for t in pool_types}:
                    self.report("workflow_nodes", nname,
                                f"task_type {node.task_type!r} does not match the task type of "
                                f"polling pool {pool_name!r} ({', '.join(sorted(pool_types))})",
                                ("task_type",))
                del group

    def check_routes(self) -> None:
        """Pools and nodes whose behaviour depends on the request (see :mod:`.route_checks`)."""
        findings: list[tuple[str, str, Finding | None]] = []
        resolver = self.resolver
        for gname in self.config.task_groups:
            findings.append(("task_groups", gname, mixed_embedding_spaces(
                resolver, group_tiers(resolver, gname), "group's fallback chain")))
        for pname, pool in self.config.polling_pools.items():
            findings.append(("polling_pools", pname, mixed_pool_settings(resolver, pool)))
            findings.append(("polling_pools", pname, unweighted_pool(resolver, pool)))
            findings.append(("polling_pools", pname, mixed_embedding_spaces(
                resolver, pool_tiers(resolver, pool), "pool")))
        for nname, node in self.config.workflow_nodes.items():
            findings.append(("workflow_nodes", nname, mixed_node_settings(resolver, node)))
            findings.append(("workflow_nodes", nname, mixed_embedding_spaces(
                resolver, node_tiers(resolver, node), "node's pool and fallback chain")))
        for section, name, finding in findings:
            if finding is not None:
                self.report(section, name, finding.message, finding.rel, severity="warning",
                            hint=finding.hint)

    def check_globals(self) -> None:
        if self.config.global_fallback is not None:
            self.report("global_fallback", "",
                        "global_fallback is deprecated: its values apply to every group that "
                        "does not set them itself", severity="warning",
                        hint="run `echelon migrate` to write them into each group")
        if self.config.rate_limiting:
            for block in self.config.rate_limiting.unused_blocks():
                self.report("rate_limiting", "",
                            f"{block} parameters are not used with algorithm "
                            f"{self.config.rate_limiting.algorithm}", (block,), severity="warning")
        pool = self.config.sidecar.pool
        if pool is not None and self.resolver.pool_name(pool) is None \
                and not self.is_broken("polling_pools", pool):
            self.report("sidecar", "", f"pool {pool!r} does not exist", ("pool",))


def _did_you_mean(value: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(value, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else None


def cross_check(config: EchelonConfig, origins: Mapping[Key, object],
                manifest: Mapping[Key, bool],
                broken: Mapping[str, set[str]] | None = None,
                salvaged: set[Key] | None = None) -> list[Problem]:
    """Every problem that needs more than one entity to see.

    ``broken`` names the entities (by section, canonical name) that failed their own schema:
    references to them are not reported as dangling. ``salvaged`` ((section, name)) were
    rebuilt without their bad fields: only errors are reported about them.
    """
    return _Checker(config, origins, manifest, broken or {}, salvaged or set()).run()
