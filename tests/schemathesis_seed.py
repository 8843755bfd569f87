#!/usr/bin/env python3
"""Seeds a node for tests/schemathesis.sh and writes the schemathesis.toml that points the
fuzzer at what it made.

A fuzzer that only invents names mostly hears "no such community / plugin / item" and never
reaches the code behind those lookups. So this makes one of everything over the API (a
community with plugins enabled, a founded governance with two members, an item, a waiting
proposal, a vote, an identity) and binds the fuzzer's path, header, query and body
parameters to those values: the community 80 % of the time, the rest half of the time,
leaving the remainder to generated (mostly wrong) values.
Plugin, action and process names need no binding: the node's document lists them as enums.

    tests/schemathesis_seed.py BASE_URL OUT_TOML [TOKEN]

writes OUT_TOML for the examples, coverage and fuzzing phases and OUT-stateful.toml beside it
for the stateful phase (see `operations`).
"""

import json
import sys
import urllib.error
import urllib.request

SLUG = "fuzz"
DOOMED = ["fuzz-doomed-1", "fuzz-doomed-2"]
FOUNDER, MEMBER = "ana", "ben"
# The share of generated requests whose bound parameter gets a seeded value; the rest are
# generated, or taken from earlier answers (mostly communities the fuzzer made, which have
# no governance, so the community gets the larger share).
PROBABILITY = 0.5
SLUG_PROBABILITY = 0.8


def stateful_out(out):
    """Where the stateful phase's file goes, beside OUT_TOML."""
    return out.removesuffix(".toml") + "-stateful.toml"


def main() -> None:
    base, out = sys.argv[1], sys.argv[2]
    token = sys.argv[3] if len(sys.argv) > 3 else None

    def call(method, path, body=None, headers=None, expect=(200, 201, 202, 204)):
        h = {"content-type": "application/json"}
        if token:
            h["authorization"] = f"Bearer {token}"
        h.update(headers or {})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req) as resp:
                status, text, location = resp.status, resp.read(), resp.headers.get("location")
        except urllib.error.HTTPError as e:
            status, text, location = e.code, e.read(), None
        if status not in expect:
            sys.exit(f"seed: {method} {path} answered {status}: {text[:300]!r}")
        return (json.loads(text) if text else None), location

    call("POST", "/api/internal/community", {"slug": SLUG, "readable_name": "Fuzz"})
    # Deleting the seeded community would leave the rest of the run nothing to reach, so the
    # deleting routes get communities and a vote of their own.
    for slug in DOOMED:
        call("POST", "/api/internal/community", {"slug": slug, "readable_name": "Doomed"})
    community = {"X-Metagov-Community": SLUG}

    # Plugin, action and process names in paths are enums in the node's document; a query's
    # `platform_type` is not, so it gets the plugins from here.
    plugins = sorted(p["name"] for p in call("GET", "/api/v1/plugins")[0]["plugins"])
    # The two plugins whose settings need no platform: actions and votes run for real.
    call("POST", "/api/internal/plugin/randomness", {"default_low": 0, "default_high": 10}, community)
    call("POST", "/api/internal/plugin/vote", {}, community)

    founder = {"X-Agora-Actor": FOUNDER}
    call("POST", f"/api/v1/communities/{SLUG}/governance", {"members": [FOUNDER, MEMBER]}, founder)
    made, _ = call(
        "POST",
        f"/api/v1/communities/{SLUG}/actions",
        {"change": "create_item", "target": "community",
         "params": {"type": "document", "fields": {"name": "seeded"}}},
        founder,
    )
    item = made["result"]["item"]
    # A member's change is a proposal: it waits on a governor's approval.
    waiting, _ = call(
        "POST",
        f"/api/v1/communities/{SLUG}/actions",
        {"change": "edit_item", "target": f"item:{item}", "params": {"fields": {"name": "x"}}},
        {"X-Agora-Actor": MEMBER},
    )
    # Deliveries go nowhere (a closed loopback port): the outbox retries them in the background.
    call(
        "POST",
        f"/api/v1/communities/{SLUG}/subscriptions",
        {"item": item, "deliver_to": "https://127.0.0.1:9/notices"},
        founder,
    )

    def vote():
        _, location = call(
            "POST",
            "/api/internal/process/vote.proposal",
            {"title": "seeded", "closing_at": "2099-01-01T00:00:00Z"},
            community,
            expect=(202,),
        )
        return int(location.rsplit("/", 1)[1])

    process_id, doomed_process = vote(), vote()

    identity = call("POST", "/api/internal/identity/create_id", {"community_slug": SLUG})[0][0]
    call(
        "POST",
        "/api/internal/identity/link_account",
        {"community_slug": SLUG, "external_id": identity, "platform_type": "vote",
         "platform_identifier": FOUNDER},
    )

    dictionaries = {
        "slugs": [SLUG],
        "agents": [FOUNDER, MEMBER],
        "plugins": plugins,
        "seeded_process": ["vote.proposal"],
        "process_ids": [process_id],
        "items": [item],
        "doomed": DOOMED,
        "doomed_process_ids": [doomed_process],
        "targets": ["community", "owners", "governors", f"item:{item}", f"action:{waiting['id']}"],
        "governance_actions": [made["id"], waiting["id"]],
        "identities": [str(identity)],
    }
    # Bound on every operation that has the parameter (schemathesis replaces, not merges, the
    # top-level bindings for an operation with bindings of its own, so each entry repeats them).
    everywhere = {
        "path.slug": "slugs",
        "path.community": "slugs",
        "header.X-Metagov-Community": "slugs",
        "header.X-Agora-Actor": "agents",
        "path.item": "items",
        "path.action": "governance_actions",
        "query.community": "slugs",
    }

    def share(param):
        return SLUG_PROBABILITY if everywhere.get(param) == "slugs" else PROBABILITY

    def binding(param, dictionary, probability=None):
        probability = share(param) if probability is None else probability
        return f'parameters."{param}" = {{ dictionary = "{dictionary}", probability = {probability} }}'

    def entry(selector, params, fixed=None, always=()):
        """An [[operations]] entry: `params` over the top-level bindings, those in `always`
        with probability 1; `fixed` parameters set to one value in every phase."""
        fixed = fixed or {}
        merged = {k: v for k, v in {**everywhere, **params}.items() if k not in fixed}
        lines = ["[[operations]]", selector]
        lines += [binding(k, v, 1.0 if k in always else None) for k, v in merged.items()]
        lines += [f'parameters."{k}" = {json.dumps(v)}' for k, v in fixed.items()]
        return "\n".join(lines)

    def by_path(regex, fixed=None, **params):
        return entry(f"include-path-regex = {json.dumps(regex)}", params, fixed=fixed)

    def operations(stateful):
        """The [[operations]] entries. The deleting routes get a community and a vote of
        their own: the fuzzer also learns the seeded slug and vote from answers (its resource
        pool). For the unit phases they are fixed (a dictionary reaches only the fuzzing
        phase, and the fuzzing phase's resource pool still found the seeded community: it was
        deleted halfway through the run). The stateful phase runs with its own file where
        they are dictionaries: fixed there, its links from a create to a delete could not be
        followed (26 scenarios against about 140). PUT on a community replaces its plugins
        and name, so it gets a doomed one too."""

        def doomed(name, param, value, dictionary):
            selector = f"include-name = {json.dumps(name)}"
            if stateful:
                return entry(selector, {param: dictionary}, always=(param,))
            return entry(selector, {}, fixed={param: value})

        return [
            # The first entry an operation matches is the one it gets: the narrow ones first.
            doomed("DELETE /api/internal/community/{slug}", "path.slug", DOOMED[0], "doomed"),
            doomed("PUT /api/internal/community/{slug}", "path.slug", DOOMED[1], "doomed"),
            doomed("DELETE /api/internal/process/{name}/{id}", "path.id", doomed_process,
                   "doomed_process_ids"),
            # Ballots go to the seeded vote in every phase, so the coverage phase's ballots
            # reach the vote's own checks rather than a 404.
            entry('include-name = "POST /api/internal/process/{name}/{id}/ballots"', {},
                  fixed={"path.name": "vote.proposal", "path.id": process_id}),
            by_path("^/api/internal/process/[^/]+/[^/]+", **{"path.name": "seeded_process",
                                                           "path.id": "process_ids"}),
            # A plugin's actions run in the seeded community in every phase (randomness and
            # vote are enabled there; the others answer that they are not).
            by_path("^/api/internal/action/[^/]+$", fixed={"header.X-Metagov-Community": SLUG}),
            # The coverage phase sends one body per change type and constraint (thousands);
            # with the seeded community fixed, they reach the governance engine, not a 404.
            by_path("^/api/v1/communities/[^/]+/actions$", fixed={"path.slug": SLUG},
                    **{"body.target": "targets", "body.batch[*].target": "targets"}),
            by_path("^/api/internal/identity/", **{"query.external_id": "identities",
                                                   "query.external_id_list": "identities",
                                                   "query.platform_type": "plugins"}),
        ]

    for path, stateful in ((out, False), (stateful_out(out), True)):
        # Top-level dotted keys first: after a table header they would belong to that table.
        toml = "# Written by tests/schemathesis_seed.py for one run: values that exist on the node.\n"
        toml += "".join(binding(k, v) + "\n" for k, v in everywhere.items())
        for name, xs in dictionaries.items():
            toml += f"\n[dictionaries.{name}]\nvalues = {json.dumps(xs)}\n"
        toml += "\n" + "\n\n".join(operations(stateful)) + "\n"
        with open(path, "w") as f:
            f.write(toml)
    print(f"seed: {SLUG} with {len(plugins)} plugins, item {item}, process {process_id}")


if __name__ == "__main__":
    main()
